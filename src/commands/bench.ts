import { spawnSync } from 'node:child_process';
import { initBackend, parseBackendChoice, probeNative } from '../backend.js';
import { benchDecode, benchTraining, type BenchResult, type DecodeResult } from '../bench.js';
import { AlexnetError } from '../errors.js';
import { logLine, parseIntFlag, parseThreads } from './common.js';

export interface BenchFlags {
  backend?: string;
  batchSize?: string;
  evalBatchSize?: string;
  steps?: string;
  threads?: string;
  json?: boolean;
  quiet?: boolean;
}

export interface BenchRecord extends BenchResult {
  type: 'bench';
  backend: string;
  gpu: boolean;
  detail: string; // the backend line
  decode: DecodeResult;
}

/**
 * `all`: every backend that loads, except `cpu`, whose one step at batch 64 takes minutes (ask for it by
 * name); wasm on the default threads and, where that is more than one, on one thread too.
 */
async function runsForAll(threads: number): Promise<{ backend: string; threads: number }[]> {
  const native = (await probeNative()).some((p) => p.loaded);
  const wasm = threads > 1 ? [{ backend: 'wasm', threads }, { backend: 'wasm', threads: 1 }] : [{ backend: 'wasm', threads: 1 }];
  return native ? [{ backend: 'tensorflow', threads: 1 }, ...wasm] : wasm;
}

export async function runBench(flags: BenchFlags): Promise<BenchRecord[]> {
  const steps = flags.steps !== undefined ? parseIntFlag('--steps', 1, 10_000)(flags.steps) : 10;
  const batchSize = flags.batchSize !== undefined ? parseIntFlag('--batch-size', 1, 65536)(flags.batchSize) : 64;
  const evalBatchSize = flags.evalBatchSize !== undefined ? parseIntFlag('--eval-batch-size', 1, 65536)(flags.evalBatchSize) : 128;
  const threads = parseThreads(flags.threads);
  const name = flags.backend ?? 'auto';
  if (name === 'all') {
    // One process per run: each gets a clean engine and its own memory.
    const records: BenchRecord[] = [];
    for (const run of await runsForAll(threads)) {
      const backend = run.backend;
      const args = [process.argv[1]!, 'bench', '--backend', backend, '--threads', String(run.threads), '--steps', String(steps), '--batch-size', String(batchSize), '--eval-batch-size', String(evalBatchSize), '--json', '--quiet'];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new AlexnetError('BACKEND', `bench --backend ${backend} failed (exit ${r.status})`, `run \`alexnet bench --backend ${backend}\` to see why`);
      const rec = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchRecord;
      records.push(rec);
      if (!flags.json) printRecord(rec);
    }
    if (flags.json) records.forEach((r) => process.stdout.write(JSON.stringify(r) + '\n'));
    return records;
  }
  const info = await initBackend(parseBackendChoice(name));
  if (!flags.quiet) logLine(info.line);
  const result = await benchTraining({ batchSize, evalBatchSize, steps, warmup: 3, threads });
  const detail = info.line.replace(/^backend: /, '') + (info.name === 'wasm' ? `, ${result.threads} thread${result.threads === 1 ? '' : 's'}` : '');
  const rec: BenchRecord = { type: 'bench', backend: info.name, gpu: info.gpu, detail, ...result, decode: benchDecode() };
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

