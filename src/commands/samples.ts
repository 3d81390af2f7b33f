import { PNG } from 'pngjs';
import { errnoWords, writeFileAtomic } from '../files.js';
import { loadCifar } from '../data/dataset.js';
import { AlexnetError } from '../errors.js';
import { renderSamples, sampleLayout } from '../samples.js';
import type { DataSource } from '../data/dataset.js';
import { logger, processConsole, type Console } from './output.js';
import { parseIntFlag, parsePath } from './parse.js';
import { dataRequest, downloadCommand, type DataFlags } from './download.js';

export interface SamplesFlags extends DataFlags {
  split?: string;
  count?: string;
  classes?: boolean;
  scale?: string;
  out?: string;
}

export interface SamplesOptions {
  data: DataSource;
  split: 'train' | 'test';
  count: number;
  byClass: boolean;
  scale: number;
  out: string | '-'; // '-' writes the PNG to stdout
  quiet: boolean;
}

export function samplesOptions(flags: SamplesFlags): SamplesOptions {
  const split = flags.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new AlexnetError('USAGE', `--split must be train or test, got ${JSON.stringify(split)}`, 'e.g. --split test');
  return {
    data: dataRequest(flags),
    split,
    count: parseIntFlag('--count', 1, 10_000, 100)(flags.count ?? '100'),
    byClass: flags.classes ?? false,
    scale: parseIntFlag('--scale', 1, 16, 4)(flags.scale ?? '4'),
    out: flags.out === '-' ? '-' : parsePath('--out', flags.out ?? 'samples.png'),
    quiet: flags.quiet ?? false,
  };
}

/** The largest grid written: 100 megapixels (400 MB of RGBA while encoding). */
export const MAX_SAMPLE_PIXELS = 100e6;

/** Writes the PNG (atomically, or to stdout) and prints its path on stdout. */
export async function samplesCommand(opts: SamplesOptions, con: Console = processConsole): Promise<void> {
  const say = logger(con, opts.quiet);
  if (opts.out === '-' && process.stdout.isTTY) {
    throw new AlexnetError('USAGE', 'refusing to write PNG bytes to a terminal', 'pipe the output (`--out - | display`) or pass --out FILE.png');
  }
  const info = await downloadCommand(opts.data, { quiet: opts.quiet }, con);
  // Grouping by class needs the whole split to find each class's first images; a plain grid only the first N.
  const limit = opts.byClass ? undefined : opts.count;
  const data = await loadCifar(opts.data.dataDir, { ...(opts.split === 'train' ? { limitTrain: limit, limitTest: 0 } : { limitTrain: 0, limitTest: limit }), labeling: info.labeling });
  const split = data[opts.split];
  const layout = sampleLayout(split.labels, data.classNames, { count: opts.count, byClass: opts.byClass, scale: opts.scale });
  // --count 10000 --scale 16 (both in range) would need a 20-gigabyte canvas ("Invalid typed array length").
  if (layout.width * layout.height > MAX_SAMPLE_PIXELS) {
    throw new AlexnetError('USAGE', `--count ${opts.count} at --scale ${opts.scale} makes a ${layout.width} x ${layout.height} image; at most ${MAX_SAMPLE_PIXELS / 1e6} megapixels are written`, `lower --count or --scale, e.g. --count ${opts.count} --scale ${Math.max(1, Math.floor(opts.scale * Math.sqrt(MAX_SAMPLE_PIXELS / (layout.width * layout.height))))}`);
  }
  if (!opts.byClass && layout.tiles.length < opts.count) say(`the ${opts.split} split has only ${layout.tiles.length} images; showing them all`);
  const image = renderSamples(split, layout, opts.scale);
  const png = new PNG({ width: image.width, height: image.height });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const bytes = PNG.sync.write(png);
  if (opts.out === '-') {
    process.stdout.write(bytes);
    return;
  }
  try {
    await writeFileAtomic(opts.out, bytes);
  } catch (e) {
    if (e instanceof AlexnetError) throw e;
    throw new AlexnetError('IO', `cannot write ${opts.out}: ${errnoWords(e)}`, 'pass --out with a path in a writable folder');
  }
  say(`${layout.tiles.length} ${opts.split} images, ${image.width}x${image.height} pixels`);
  con.out(opts.out + '\n');
}
