// `node dist/scripts/images-bench.js DIR`: an image folder made into records (what `train --images DIR` does once),
// against PIL decoding the same files (scripts/peers/pil_decode.py, as torchvision's ImageFolder loads them) in the
// same run, as a ratio, with the peak memory of ours. The records go to a temporary data dir, made anew each
// round (--force), which is removed at the end. Rounds alternate PIL and ours (ALEXNET_IMAGES_ROUNDS, default 3)
// and the table gives each round and the medians. Needs `apt-get install -y python3-pil` for the peer.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node dist/scripts/images-bench.js DIR (an image folder: DIR/<class>/... or DIR/train/<class>/...)\n');
  process.exit(2);
}
const rounds = Number(process.env.ALEXNET_IMAGES_ROUNDS ?? 3);
const python = ['python3', '/usr/bin/python3'].find((py) => spawnSync(py, ['-c', 'import PIL'], { stdio: 'ignore' }).status === 0) ?? null;

/** Ours in a process of its own, as `train --images` would: wall seconds and peak resident memory. */
function ours(dataDir: string): { seconds: number; maxRssMb: number; files: number } {
  const code = `
    const { ensureFolderRecords, listFolder } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'data', 'folder.js'))});
    const t = performance.now();
    await ensureFolderRecords(process.argv[1], process.argv[2], { skipBad: false, force: true });
    const seconds = (performance.now() - t) / 1000;
    const files = (await listFolder(process.argv[1])).files.length;
    console.log(JSON.stringify({ seconds, maxRssMb: process.resourceUsage().maxRSS / 1024, files }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, dir!, dataDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`making the records failed with exit ${r.status}`);
  return JSON.parse(r.stdout.trim()) as { seconds: number; maxRssMb: number; files: number };
}

function pil(): { seconds: number; files: number; pil: string } | null {
  if (python === null) return null;
  const r = spawnSync(python, [path.join(ROOT, 'scripts', 'peers', 'pil_decode.py'), dir!], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return r.status === 0 ? (JSON.parse(r.stdout.trim()) as { seconds: number; files: number; pil: string }) : null;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-images-bench-'));
try {
  const rows: { ours: ReturnType<typeof ours>; pil: ReturnType<typeof pil> }[] = [];
  for (let i = 0; i < rounds; i++) rows.push({ pil: pil(), ours: ours(dataDir) });
  console.log(`${rows[0]!.ours.files.toLocaleString('en-US')} files in ${dir}, ${os.availableParallelism()} cores; ${python === null ? 'no python3 with PIL (apt-get install -y python3-pil): no peer' : `peer: PIL ${rows[0]!.pil?.pil}, one core`}`);
  console.log('| round | ours: records (s) | ours: peak memory (MB) | PIL: decode (s) | ratio |');
  console.log('| ---: | ---: | ---: | ---: | ---: |');
  rows.forEach((r, i) => console.log(`| ${i + 1} | ${r.ours.seconds.toFixed(2)} | ${r.ours.maxRssMb.toFixed(0)} | ${r.pil ? r.pil.seconds.toFixed(2) : '-'} | ${r.pil ? `${(r.ours.seconds / r.pil.seconds).toFixed(2)}x` : '-'} |`));
  const o = median(rows.map((r) => r.ours.seconds));
  const p = rows.every((r) => r.pil) ? median(rows.map((r) => r.pil!.seconds)) : null;
  console.log(`| median | ${o.toFixed(2)} | ${median(rows.map((r) => r.ours.maxRssMb)).toFixed(0)} | ${p === null ? '-' : p.toFixed(2)} | ${p === null ? '-' : `${(o / p).toFixed(2)}x`} |`);
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
}
