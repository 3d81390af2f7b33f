// `npm run bench`: our backends (`alexnet bench --backend all`) and the PyTorch peers in the same run, and the
// ratio of each of ours to its peer. Speed targets are read from these tables, never asserted in tests.
//
// CPU: scripts/peers/torch_cpu_step.py (needs `apt-get install -y python3-torch`), against each backend's
// step time at batch 64. The webgpu host floor: both webgpu runners on Dawn's null adapter (host time alone).
// GPU, where python3 has CUDA PyTorch and a webgpu row ran on a GPU: scripts/peers/torch_gpu_epoch.py (both its loops, 3 epochs, the median of epochs 1-2) against our webgpu
// backend's implied epoch at batch 64 and 512. When a peer cannot run, its table says why and still reports ours.
// Then the CPU's scaling: the wasm step and the PyTorch step at 1, 2, 4, ... threads up to the core count, in
// paired rounds (each pair timed seconds apart), so that the default thread count can follow a measurement on each
// machine and the ratios hold on a machine whose speed swings.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_THREADS } from '../src/backends/wasm/threads.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEERS = path.join(ROOT, 'scripts', 'peers');
const PEER = process.env.ALEXNET_PEER_SCRIPT ?? path.join(PEERS, 'torch_cpu_step.py');
const GPU_PEER = process.env.ALEXNET_GPU_PEER_SCRIPT ?? path.join(PEERS, 'torch_gpu_epoch.py');
const STEPS = process.env.BENCH_STEPS ?? '20';
const THREADS = String(os.availableParallelism());

interface Ours { backend: string; gpu: boolean; detail: string; batchSize: number; threads: number; stepMsMedian: number; hostMsMedian: number; dispatchesPerStep: number | null; runner: string | null; trainImagesPerSecond: number; evalImagesPerSecond: number; epochSeconds: number; decode: { msMedian: number } | null }
interface Peer { peer: string; torch: string; threads: number; stepMsMedian: number }
interface GpuPeerEpoch { loop: string; batch: number; epoch: number; seconds: number; device: string; torch: string }

function alexnetBench(args: string[], env: Record<string, string> = {}, steps = STEPS): Ours[] {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'alexnet'), 'bench', ...args, '--steps', steps, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`alexnet bench ${args.join(' ')} failed with exit ${r.status}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ours);
}

const pythons = new Map<boolean, string | null>();
/** The first python3 that imports torch (with CUDA, for `cuda`): PATH's, else Debian's (python3-torch). Looked
 *  for once: the scaling rounds call the peer over and over. */
function pythonWithTorch(cuda: boolean): string | null {
  if (!pythons.has(cuda)) {
    const check = cuda ? 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' : 'import torch';
    pythons.set(cuda, ['python3', '/usr/bin/python3'].find((py) => spawnSync(py, ['-c', check]).status === 0) ?? null);
  }
  return pythons.get(cuda)!;
}

function python(script: string, args: string[], cuda = false): { ok: true; lines: string[] } | { ok: false; why: string } {
  if (!existsSync(script)) return { ok: false, why: `peer script not found at ${script}` };
  const py = pythonWithTorch(cuda);
  if (py === null) return { ok: false, why: cuda ? 'no python3 with CUDA PyTorch' : 'PyTorch is not installed: apt-get install -y python3-torch' };
  const r = spawnSync(py, [script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) {
    return { ok: false, why: /No module named 'torch'/.test(r.stderr) ? 'PyTorch is not installed: apt-get install -y python3-torch' : `peer failed: ${r.stderr.trim().split('\n').pop()}` };
  }
  return { ok: true, lines: r.stdout.trim().split('\n').filter((l) => l.startsWith('{')) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// The thread counts of the scaling table below: 1, 2, 4, ... up to the core count, and the count itself. The first
// table compares every backend with the peer at the core count, each timed once.
const counts = [...new Set([...Array.from({ length: 16 }, (_, i) => 2 ** i).filter((n) => n < os.availableParallelism()), os.availableParallelism()])];
const ours = alexnetBench(['--backend', 'all']);
const peerRun = python(PEER, ['--threads', THREADS, '--batch', '64', '--steps', STEPS]);
const peer: Peer | string = peerRun.ok ? (JSON.parse(peerRun.lines.at(-1)!) as Peer) : peerRun.why;
const rows = [
  '| runner | step ms (batch 64, median) | train img/s | eval img/s | implied epoch s | ratio to PyTorch CPU |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...ours.map((o) => `| alexnet ${o.detail} | ${o.stepMsMedian} | ${o.trainImagesPerSecond} | ${o.evalImagesPerSecond} | ${o.epochSeconds} | ${typeof peer === 'string' ? 'n/a' : (o.stepMsMedian / peer.stepMsMedian).toFixed(2) + 'x'} |`),
  typeof peer === 'string' ? `| PyTorch CPU peer | ${peer} | | | | |` : `| PyTorch ${peer.torch} CPU, ${peer.threads} threads | ${peer.stepMsMedian} | ${(64000 / peer.stepMsMedian).toFixed(1)} | | | 1.00x |`,
];
process.stdout.write(`${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'} (${os.availableParallelism()} cores), ${STEPS} timed steps\n`);
process.stdout.write(rows.join('\n') + '\n');
process.stdout.write(`decoding 60,000 records: ${ours[0]?.decode?.msMedian} ms\n`);

// The scaling over cores: wasm's step and PyTorch's at 1, 2, 4, ... threads up to the core count (and the count
// itself), in paired rounds: each round times PyTorch then wasm at each count, one right after the other, and the
// ratio is the median of the rounds' own ratios. The build machine is a shared VM whose speed swings by a third
// within minutes (2026-12-06: wasm's one-thread step 209-384 ms in three runs of this script), so a ratio of two
// figures taken a minute apart says little; a pair taken seconds apart sees the same machine. Above --threads'
// cap, wasm's row says so: the cap waits for such a table. A neighbour's load only ever slows a runner, so the
// last column divides each runner's quickest round too.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_STEPS = process.env.BENCH_ROUND_STEPS ?? '10';
interface Pair { ours: number | null; peer: number | null }
const pairs = new Map<number, Pair[]>(counts.map((n) => [n, []]));
// Why a runner has no figure at a count; once it fails there, later rounds do not run it again.
const oursWhy = new Map<number, string>(counts.filter((n) => n > MAX_THREADS).map((n) => [n, `n/a (--threads is at most ${MAX_THREADS})`]));
const peerWhy = new Map<number, string>();
for (let round = 0; round < ROUNDS; round++) {
  for (const n of counts) {
    let peerMs: number | null = null;
    if (!peerWhy.has(n)) {
      const p = python(PEER, ['--threads', String(n), '--batch', '64', '--steps', ROUND_STEPS]);
      if (p.ok) peerMs = (JSON.parse(p.lines.at(-1)!) as Peer).stepMsMedian;
      else peerWhy.set(n, p.why);
    }
    let oursMs: number | null = null;
    if (!oursWhy.has(n)) {
      try {
        oursMs = alexnetBench(['--backend', 'wasm', '--threads', String(n), '--no-decode', '--quiet'], {}, ROUND_STEPS)[0]!.stepMsMedian;
      } catch (e) {
        oursWhy.set(n, (e as Error).message);
      }
    }
    pairs.get(n)!.push({ ours: oursMs, peer: peerMs });
  }
}
const scalingRows = counts.map((n) => {
  const ps = pairs.get(n)!;
  const mine = ps.flatMap((q) => (q.ours === null ? [] : [q.ours]));
  const theirs = ps.flatMap((q) => (q.peer === null ? [] : [q.peer]));
  const ratios = ps.flatMap((q) => (q.ours === null || q.peer === null ? [] : [q.ours / q.peer]));
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
  const best = mine.length && theirs.length ? `${Math.min(...mine).toFixed(1)} / ${Math.min(...theirs).toFixed(1)} = ${(Math.min(...mine) / Math.min(...theirs)).toFixed(2)}x` : '';
  return `| ${n} | ${mine.length ? median(mine).toFixed(1) : oursWhy.get(n)} | ${theirs.length ? median(theirs).toFixed(1) : peerWhy.get(n) ?? 'n/a'} | ${ratios.length ? `${median(ratios).toFixed(2)}x (${range(ratios)})` : ''} | ${best} |`;
});
process.stdout.write(['', `scaling over cores (batch 64; ${os.availableParallelism()} cores): the step at each thread count, medians of ${ROUNDS} paired rounds of ${ROUND_STEPS} steps`, '| threads | alexnet wasm ms | PyTorch CPU ms | ratio: median of the rounds\' (range) | quietest rounds: wasm / PyTorch ms |', '| ---: | ---: | ---: | ---: | ---: |', ...scalingRows].join('\n') + '\n');

// The webgpu host floor: each runner on Dawn's null adapter, which accepts every call and runs nothing, so a step's
// time there is what the host spends on it: the least a step can take on any GPU (issue #18).
const floor = ['compiled', 'ops'].map((runner) => {
  try {
    return alexnetBench(['--backend', 'webgpu', '--webgpu-runner', runner, '--no-decode', '--quiet'], { ALEXNET_DAWN_FLAGS: 'backend=null' })[0]!;
  } catch (e) {
    return `${runner}: ${(e as Error).message}`;
  }
});
process.stdout.write(['', 'webgpu host floor (Dawn null adapter; batch 64): a step\'s host time, from the call to its submit', '| runner | host ms per step (median) | dispatches per step |', '| --- | ---: | ---: |',
  ...floor.map((f) => (typeof f === 'string' ? `| ${f} | | |` : `| ${f.runner} | ${f.hostMsMedian} | ${f.dispatchesPerStep ?? 'n/a'} |`))].join('\n') + '\n');

// The GPU table: only where our webgpu backend ran on a GPU and python3 has CUDA PyTorch.
const webgpu = ours.find((o) => o.backend === 'webgpu' && o.gpu);
const cuda = pythonWithTorch(true) !== null;
if (!webgpu || !cuda) {
  process.stdout.write(`\nGPU table: not run (${!webgpu ? 'no webgpu backend on a GPU here' : 'python3 has no CUDA PyTorch'})\n`);
} else {
  const gpuRows = ['| batch | alexnet webgpu, implied epoch s | PyTorch CUDA, seed loop s | ratio | PyTorch CUDA, data on the GPU s | ratio |', '| ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const batch of [64, 512]) {
    const mine = batch === webgpu.batchSize ? webgpu : alexnetBench(['--backend', 'webgpu', '--gpu', '--batch-size', String(batch), '--no-decode'])[0]!;
    const run = python(GPU_PEER, ['--batch', String(batch), '--epochs', '3'], true);
    if (!run.ok) {
      gpuRows.push(`| ${batch} | ${mine.epochSeconds} | ${run.why} | | | |`);
      continue;
    }
    const epochs = run.lines.map((l) => JSON.parse(l) as GpuPeerEpoch);
    const loop = (name: string) => median(epochs.filter((e) => e.loop === name && e.epoch >= 1).map((e) => e.seconds));
    const [seed, resident] = [loop('seed'), loop('resident')];
    gpuRows.push(`| ${batch} | ${mine.epochSeconds} | ${seed.toFixed(2)} | ${(mine.epochSeconds / seed).toFixed(2)}x | ${resident.toFixed(2)} | ${(mine.epochSeconds / resident).toFixed(2)}x |`);
  }
  process.stdout.write(`\n${webgpu.detail}; PyTorch: median of epochs 1-2 of ${path.basename(GPU_PEER)}\n${gpuRows.join('\n')}\n`);
}
