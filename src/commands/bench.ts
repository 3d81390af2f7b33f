// `alexnet bench`: times the training step, evaluation and decoding on one backend, or on every backend that
// starts here (`--backend all`, each in its own process), and prints the figures.

import { spawnSync } from 'node:child_process';
import { BACKENDS, defaultSettings, initBackend, parseBackendChoice } from '../backends/index.js';
import { benchDecode, benchTraining, type BenchResult, type DecodeResult } from '../bench.js';
import { AlexnetError } from '../errors.js';
import { createModel } from '../model.js';
import { RECIPE, parseField } from '../recipe.js';
import { checkBatchSizes } from '../run.js';
import { explicitSettings, logger, parseIntFlag, processConsole, type Console } from './common.js';

export interface BenchRecord extends BenchResult {
  type: 'bench';
  backend: string;
  gpu: boolean;
  detail: string; // the backend line without `backend: `
  decode: DecodeResult | null; // null with --no-decode
}

export async function runBench(flags: Record<string, unknown>, isExplicit: (flag: string) => boolean, con: Console = processConsole): Promise<BenchRecord[]> {
  const steps = typeof flags.steps === 'string' ? parseIntFlag('--steps', 1, 10_000, 10)(flags.steps) : 10;
  const batchSize = typeof flags.batchSize === 'string' ? parseField(RECIPE.batchSize, flags.batchSize) : RECIPE.batchSize.default!;
  const evalBatchSize = typeof flags.evalBatchSize === 'string' ? parseField(RECIPE.evalBatchSize, flags.evalBatchSize) : RECIPE.evalBatchSize.default!;
  const settings = { ...defaultSettings(), ...explicitSettings(flags, isExplicit) };
  const say = logger(con, Boolean(flags.quiet));
  const name = String(flags.backend ?? 'auto');
  if (name === 'all') {
    // One process per run: each gets a clean engine and its own memory.
    const records: BenchRecord[] = [];
    for (const b of BACKENDS) {
      for (const args of b.benchAll(settings)) {
        // Decoding does not depend on the backend: timed once, below, not in each run.
        const argv = [process.argv[1]!, 'bench', '--backend', b.name, ...args, '--steps', String(steps), '--batch-size', String(batchSize), '--eval-batch-size', String(evalBatchSize), '--no-decode', '--json', '--quiet'];
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
        if (!flags.json) con.out(recordText(rec));
      }
    }
    const decode = flags.decode === false ? null : benchDecode();
    records.forEach((r) => (r.decode = decode));
    if (flags.json) records.forEach((r) => con.out(JSON.stringify(r) + '\n'));
    else if (decode) con.out(decodeText(decode) + '\n');
    return records;
  }
  const backend = await initBackend(parseBackendChoice(name), { gpu: Boolean(flags.gpu), quiet: Boolean(flags.quiet) });
  say(`backend: ${backend.detail}`);
  const model = createModel({ seed: 0 });
  try {
    checkBatchSizes(backend, model, [['--batch-size', batchSize], ['--eval-batch-size', evalBatchSize]]);
  } finally {
    model.dispose();
  }
  const result = await benchTraining(backend, { batchSize, evalBatchSize, steps, warmup: 3, settings });
  const detail = backend.detail + (result.runner ? `, ${result.runner}` : '');
  const rec: BenchRecord = { type: 'bench', backend: backend.name, gpu: backend.gpu, detail, ...result, decode: flags.decode === false ? null : benchDecode() };
  con.out(flags.json ? JSON.stringify(rec) + '\n' : recordText(rec) + (rec.decode ? decodeText(rec.decode) + '\n' : ''));
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
