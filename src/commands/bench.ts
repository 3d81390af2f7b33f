// `alexnet bench`: times the training step, evaluation and decoding on one backend, or on every backend that
// starts here (`--backend all`, each in its own process), and prints the figures.

import { spawnSync } from 'node:child_process';
import { BACKENDS, defaultSettings, parseBackendChoice, type BackendChoice } from '../backends/index.js';
import { benchDecode, runBench, type BenchRecord, type BenchRun, type DecodeResult } from '../bench.js';
import { AlexnetError } from '../errors.js';
import { RECIPE, parseField } from '../recipe.js';
import { logger, processConsole, type Console } from './output.js';
import { explicitSettings, parseIntFlag } from './parse.js';

export interface BenchCommandOptions extends Omit<BenchRun, 'backend'> {
  /** A backend, or `all`: every backend that starts here, each in its own process. */
  backend: BackendChoice | 'all';
  json: boolean;
}

/** Turns flag strings (commander's, by option name) into typed options, once. */
export function benchOptions(flags: Record<string, unknown>, isExplicit: (flag: string) => boolean): BenchCommandOptions {
  const name = String(flags.backend ?? 'auto');
  const asked = explicitSettings(flags, isExplicit);
  return {
    backend: name === 'all' ? 'all' : parseBackendChoice(name),
    gpu: Boolean(flags.gpu),
    steps: typeof flags.steps === 'string' ? parseIntFlag('--steps', 1, 10_000, 10)(flags.steps) : 10,
    batchSize: typeof flags.batchSize === 'string' ? parseField(RECIPE.batchSize, flags.batchSize) : RECIPE.batchSize.default!,
    evalBatchSize: typeof flags.evalBatchSize === 'string' ? parseField(RECIPE.evalBatchSize, flags.evalBatchSize) : RECIPE.evalBatchSize.default!,
    settings: { ...defaultSettings(), ...asked },
    asked,
    decode: flags.decode !== false,
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
  };
}

export async function benchCommand(opts: BenchCommandOptions, con: Console = processConsole): Promise<BenchRecord[]> {
  const say = logger(con, opts.quiet);
  if (opts.backend === 'all') {
    // One process per run: each gets a clean engine and its own memory.
    const records: BenchRecord[] = [];
    for (const b of BACKENDS) {
      for (const args of b.benchAll(opts.settings)) {
        // Decoding does not depend on the backend: timed once, below, not in each run.
        const argv = [process.argv[1]!, 'bench', '--backend', b.name, ...args, '--steps', String(opts.steps), '--batch-size', String(opts.batchSize), '--eval-batch-size', String(opts.evalBatchSize), '--no-decode', '--json', '--quiet'];
        const r = spawnSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        if (r.status !== 0) {
          // A backend that does not start here is left out, with its reason; one that starts and then fails is an error.
          const why = r.stderr.split('\n').find((l) => l.startsWith('error: '));
          if (!why || !/^error: (--backend|--gpu)/.test(why)) {
            process.stderr.write(r.stderr);
            throw new AlexnetError('BACKEND', `bench --backend ${b.name} failed (exit ${r.status})`, `run \`alexnet bench --backend ${b.name}\` to see why`);
          }
          say(`bench: ${b.name} left out: ${why.slice('error: '.length)}`);
          continue;
        }
        const rec = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchRecord;
        records.push(rec);
        if (!opts.json) con.out(recordText(rec));
      }
    }
    const decode = opts.decode ? benchDecode() : null;
    records.forEach((r) => (r.decode = decode));
    if (opts.json) records.forEach((r) => con.out(JSON.stringify(r) + '\n'));
    else if (decode) con.out(decodeText(decode) + '\n');
    return records;
  }
  const rec = await runBench({ ...opts, backend: opts.backend }, { log: say });
  con.out(opts.json ? JSON.stringify(rec) + '\n' : recordText(rec) + (rec.decode ? decodeText(rec.decode) + '\n' : ''));
  return [rec];
}

function recordText(r: BenchRecord): string {
  return [
    `${r.detail}`,
    `  train step (batch ${r.batchSize}): ${r.stepMsMedian} ms median of ${r.steps}, ${r.trainImagesPerSecond} images/s`,
    `  evaluation: ${r.evalMsMedian} ms per batch, ${r.evalImagesPerSecond} images/s`,
    `  implied epoch (50,000 train + 10,000 test): ${r.epochSeconds} s`,
  ].join('\n') + '\n';
}

const decodeText = (d: DecodeResult) => `decoding ${d.records.toLocaleString('en-US')} records: ${d.msMedian} ms (${d.mbPerSecond} MB/s)`;
