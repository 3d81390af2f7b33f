import { spawnSync } from 'node:child_process';
import { BACKENDS, initBackend, parseBackendChoice } from '../backends/index.js';
import { benchDecode, benchTraining, type BenchResult, type DecodeResult } from '../bench.js';
import { AlexnetError } from '../errors.js';
import { logLine, parseIntFlag, parseThreads } from './common.js';

export interface BenchFlags {
  backend?: string;
  batchSize?: string;
  evalBatchSize?: string;
  steps?: string;
  threads?: string;
  gpu?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export interface BenchRecord extends BenchResult {
  type: 'bench';
  backend: string;
  gpu: boolean;
  detail: string; // the backend line without `backend: `
  decode: DecodeResult;
}

/** `all`: the runs the backends' table lists, of every backend that starts here. */
const runsForAll = (threads: number) => BACKENDS.flatMap((b) => b.benchAll(threads).map((args) => ({ backend: b.name, args })));

export async function runBench(flags: BenchFlags): Promise<BenchRecord[]> {
  const steps = flags.steps !== undefined ? parseIntFlag('--steps', 1, 10_000, 10)(flags.steps) : 10;
  const batchSize = flags.batchSize !== undefined ? parseIntFlag('--batch-size', 1, 65536, 64)(flags.batchSize) : 64;
  const evalBatchSize = flags.evalBatchSize !== undefined ? parseIntFlag('--eval-batch-size', 1, 65536, 128)(flags.evalBatchSize) : 128;
  const threads = parseThreads(flags.threads);
  const name = flags.backend ?? 'auto';
  if (name === 'all') {
    // One process per run: each gets a clean engine and its own memory.
    const records: BenchRecord[] = [];
    for (const run of runsForAll(threads)) {
      const args = [process.argv[1]!, 'bench', '--backend', run.backend, ...run.args, '--steps', String(steps), '--batch-size', String(batchSize), '--eval-batch-size', String(evalBatchSize), '--json', '--quiet'];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (r.status !== 0) {
        // A backend that does not start here is left out, with its reason; one that starts and then fails is an error.
        const why = r.stderr.split('\n').find((l) => l.startsWith('error: '));
        if (!why || !/^error: (--backend|--gpu)/.test(why)) {
          process.stderr.write(r.stderr);
          throw new AlexnetError('BACKEND', `bench --backend ${run.backend} failed (exit ${r.status})`, `run \`alexnet bench --backend ${run.backend}\` to see why`);
        }
        if (!flags.quiet) logLine(`bench: ${run.backend} left out: ${why.slice('error: '.length)}`);
        continue;
      }
      const rec = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchRecord;
      records.push(rec);
      if (!flags.json) printRecord(rec);
    }
    if (flags.json) records.forEach((r) => process.stdout.write(JSON.stringify(r) + '\n'));
    return records;
  }
  const backend = await initBackend(parseBackendChoice(name), { gpu: flags.gpu });
  if (!flags.quiet) logLine(`backend: ${backend.detail}`);
  const result = await benchTraining(backend, { batchSize, evalBatchSize, steps, warmup: 3, threads });
  const used = backend.threadsFor(threads);
  const detail = backend.detail + (used !== undefined ? `, ${used} thread${used === 1 ? '' : 's'}` : '');
  const rec: BenchRecord = { type: 'bench', backend: backend.name, gpu: backend.gpu, detail, ...result, decode: benchDecode() };
  if (flags.json) process.stdout.write(JSON.stringify(rec) + '\n');
  else printRecord(rec);
  return [rec];
}

function printRecord(r: BenchRecord): void {
  process.stdout.write([
    `${r.detail}`,
    `  train step (batch ${r.batchSize}): ${r.stepMsMedian} ms median of ${r.steps}, ${r.trainImagesPerSecond} images/s`,
    `  evaluation: ${r.evalMsMedian} ms per batch, ${r.evalImagesPerSecond} images/s`,
    `  implied epoch (50,000 train + 10,000 test): ${r.epochSeconds} s`,
    `  decoding ${r.decode.records.toLocaleString('en-US')} records: ${r.decode.msMedian} ms (${r.decode.mbPerSecond} MB/s)`,
  ].join('\n') + '\n');
}
