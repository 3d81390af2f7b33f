// `npm run bench`: our backends (`alexnet bench --backend all`) and the PyTorch CPU peer in the same run,
// and the ratio of each backend's step time to PyTorch's. Speed targets are read from this table, never
// asserted in tests.
//
// The peer is ../shared/peers/torch_cpu_step.py (needs `apt-get install -y python3-torch`); when it cannot
// run, the table says so and still reports ours.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEER = process.env.ALEXNET_PEER_SCRIPT ?? path.resolve(ROOT, '..', 'shared', 'peers', 'torch_cpu_step.py');
const STEPS = process.env.BENCH_STEPS ?? '20';
const THREADS = String(os.availableParallelism());

interface Ours { backend: string; detail: string; batchSize: number; stepMsMedian: number; trainImagesPerSecond: number; evalImagesPerSecond: number; epochSeconds: number; decode: { msMedian: number } }
interface Peer { peer: string; torch: string; threads: number; stepMsMedian: number }

function runOurs(): Ours[] {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'alexnet'), 'bench', '--backend', 'all', '--steps', STEPS, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`alexnet bench failed with exit ${r.status}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Ours);
}

function runPeer(): Peer | string {
  if (!existsSync(PEER)) return `peer script not found at ${PEER}`;
  const r = spawnSync('/usr/bin/python3', [PEER, '--threads', THREADS, '--batch', '64', '--steps', STEPS], { encoding: 'utf8' });
  if (r.status !== 0) {
    return /No module named 'torch'/.test(r.stderr) ? 'PyTorch is not installed: apt-get install -y python3-torch' : `peer failed: ${r.stderr.trim().split('\n').pop()}`;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Peer;
}

const ours = runOurs();
const peer = runPeer();
const rows = [
  '| runner | step ms (batch 64, median) | train img/s | eval img/s | implied epoch s | ratio to PyTorch |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...ours.map((o) => `| alexnet ${o.detail} | ${o.stepMsMedian} | ${o.trainImagesPerSecond} | ${o.evalImagesPerSecond} | ${o.epochSeconds} | ${typeof peer === 'string' ? 'n/a' : (o.stepMsMedian / peer.stepMsMedian).toFixed(2) + 'x'} |`),
  typeof peer === 'string' ? `| PyTorch CPU peer | ${peer} | | | | |` : `| PyTorch ${peer.torch} CPU, ${peer.threads} threads | ${peer.stepMsMedian} | ${(64000 / peer.stepMsMedian).toFixed(1)} | | | 1.00x |`,
];
process.stdout.write(`${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'} (${os.availableParallelism()} cores), ${STEPS} timed steps\n`);
process.stdout.write(rows.join('\n') + '\n');
process.stdout.write(`decoding 60,000 records: ${ours[0]?.decode.msMedian} ms\n`);
