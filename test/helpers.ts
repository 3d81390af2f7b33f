// Shared by the tests: run the real CLI as a user would, and serve archives on 127.0.0.1.

import assert from 'node:assert/strict';
import type { Limits, Recipe } from '../src/recipe.js';
import type { TrainingOptions } from '../src/run.js';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendEntry } from '../src/backends/table.js';
import type { ActiveBackend, BackendName } from '../src/backends/types.js';
import { preflight } from '../src/backends/webgpu/adapter.js';
import tf from '../src/tf.cjs';
import { IMAGE_SIZE } from '../src/data/cifar.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Whether an optional native TensorFlow package is installed here (its download works on some machines). */
export const nativeInstalled = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'].some((p) => {
  try {
    createRequire(import.meta.url).resolve(p);
    return true;
  } catch {
    return false;
  }
});

/**
 * The backend line of `auto` on a machine without a GPU: wasm, saying why no GPU backend runs; where tfjs-node is
 * installed, TensorFlow on the CPU (or wasm, where it does not load). A software WebGPU adapter is never taken.
 */
const AUTO_WITHOUT_GPU = nativeInstalled
  ? /^backend: (tensorflow \(CPU(; TensorFlow sees no usable GPU, see `alexnet doctor`)?; @tensorflow\/tfjs-node(-gpu)?; no GPU backend: [^\n]+\)|wasm \(CPU; no GPU backend: [^\n]+\))$/m
  : /^backend: wasm \(CPU; no GPU backend: native TensorFlow is not installed; WebGPU(:| has only) [^;]+; see README "GPU"\)$/m;

/**
 * What `auto` must say here. Without a GPU (no device node or only software Vulkan drivers chosen: the
 * preflight `auto` itself makes) that is AUTO_WITHOUT_GPU; where a GPU may be, any backend line, which
 * test/invariant.test.ts and the GPU check then hold to their numbers.
 */
export const AUTO_LINE = process.platform === 'linux' && preflight().noHardware !== null ? AUTO_WITHOUT_GPU : /^backend: \w+ \(.+\)$/m;
/** Whether `cmd args` runs here, or why not (a skip reason). */
export function works(cmd: string, args: string[], why: string): string | false {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return false;
  } catch {
    return why;
  }
}

/** Why the tests that inject faults with strace (errors, delays, a SIGKILL at a syscall) skip here, or false. */
export const noStrace = works('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'inject=fsync:error=EIO:delay_enter=1', 'true'], 'needs strace (apt-get install strace) able to trace here');

/** The CLI the end-to-end tests run: this checkout's, or another build's (ALEXNET_TEST_BIN: to show a test fails there). */
export const BIN = process.env.ALEXNET_TEST_BIN ?? path.join(ROOT, 'bin', 'alexnet');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Stderr to a file of its own (as `2>err.log`), read back when the command ends, instead of a pipe. */
  stderrToFile?: boolean;
  /** Stdout into this file (as `>/dev/full`), instead of a pipe; `stdout` is then ''. */
  stdoutTo?: string;
  /** Called with each stderr chunk; lets a test send a signal at the right moment. */
  onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void;
  /** Called with each stdout chunk. */
  onStdout?: (chunk: string, child: ReturnType<typeof spawn>) => void;
  cwd?: string;
  timeoutMs?: number;
}

export function runCli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], opts);
}

/**
 * The CLI under another command that runs it: `strace ...`, `unshare ...`, or `bash -c 'ulimit ...; exec "$@"'`
 * (`wrapper` ends where the command to run goes).
 */
export function runCliUnder(wrapper: string[], args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(wrapper[0]!, [...wrapper.slice(1), process.execPath, BIN, ...args], opts);
}

/** A shell with a resource limit set (`ulimit -n 256`) around the command: for runCliUnder. */
export const withUlimit = (limit: string): string[] => ['bash', '-c', `ulimit ${limit} && exec "$@"`, 'bash'];

/** Runs any command with the test environment (short retry delays), collecting its output. */
export function run(command: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const errFile = opts.stderrToFile ? path.join(tmpDir(), 'stderr') : null;
  const errFd = errFile ? fs.openSync(errFile, 'w') : null;
  const outFd = opts.stdoutTo ? fs.openSync(opts.stdoutTo, 'w') : null;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ALEXNET_RETRY_DELAY_MS: '20', ...opts.env },
      stdio: ['ignore', outFd ?? 'pipe', errFd ?? 'pipe'],
      cwd: opts.cwd,
    });
    if (outFd !== null) fs.closeSync(outFd);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
      opts.onStdout?.(String(d), child);
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(String(d), child);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (errFd !== null) {
        fs.closeSync(errFd);
        stderr = fs.readFileSync(errFile!, 'utf8');
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface TerminalRun {
  code: number | null;
  /** What the terminal showed (stdout and stderr together), escape sequences and carriage returns removed. */
  screen: string;
  /** The same, raw. */
  raw: string;
}

/**
 * Runs the CLI on a pseudo-terminal, as a person in a shell runs it: `script(1)` gives it a terminal for stdin,
 * stdout and stderr. `ctrlC(screen)` is asked after each chunk of output; when it says yes, a Ctrl-C is typed
 * (the terminal turns it into SIGINT for the command, as a keyboard does).
 */
export function runOnTerminal(args: string[], opts: { ctrlC?: (screen: string) => boolean; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<TerminalRun> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ALEXNET_RETRY_DELAY_MS: '20', ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let raw = '';
    let typed = false;
    child.stdout.on('data', (d) => {
      raw += d;
      if (!typed && opts.ctrlC?.(clean(raw))) {
        typed = true;
        child.stdin.write('\x03');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen: clean(raw), raw });
    });
  });
}

/** Terminal output as text: escape sequences gone, each carriage return a line break (bars redraw with them). */
const clean = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '').replace(/\r\n?/g, '\n');

/**
 * One folder per test process, holding every tmpDir(): removed when the process exits, passed or failed (one
 * `npm test` used to leave ~200 /tmp/alexnet-test-* folders, 228 MB: issue #17).
 */
let root: string | null = null;
function testRoot(): string {
  if (root === null) {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-test-'));
    const made = root;
    process.on('exit', () => fs.rmSync(made, { recursive: true, force: true, maxRetries: 3 }));
  }
  return root;
}

/** A new empty folder, removed with the test process's root. */
export function tmpDir(prefix = 'tmp-'): string {
  return fs.mkdtempSync(path.join(testRoot(), prefix));
}

/** Serves `archive` on 127.0.0.1 and returns the data flags of a fresh data dir for it; close() stops the server. */
export async function serveArchive(archive: Buffer): Promise<{ url: string; dataDir: string; flags: string[]; close: () => Promise<void> }> {
  const server = await serve((req, res) => sendWithRange(req, res, archive));
  const dataDir = tmpDir();
  const md5 = createHash('md5').update(archive).digest('hex');
  return { url: server.url, dataDir, flags: ['--data-dir', dataDir, '--url', server.url, '--md5', md5], close: server.close };
}

/** A Console for calling a command in-process: what it printed on stdout and stderr. */
export function captureConsole(errIsTTY = false): { out: string; err: string[]; errIsTTY: boolean; con: { out(text: string): void; err(line: string): void; errIsTTY: boolean } } {
  const c = {
    out: '',
    err: [] as string[],
    errIsTTY,
    con: {
      out: (text: string) => void (c.out += text),
      err: (line: string) => void c.err.push(line),
      errIsTTY,
    },
  };
  return c;
}

/** Every file below `dir`, relative, sorted: to show that nothing half-written was left. */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort();
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

/** An HTTP server on an ephemeral 127.0.0.1 port; `n` counts requests from 1. */
export async function serve(handler: Handler): Promise<{ url: string; requests: http.IncomingHttpHeaders[]; close: () => Promise<void> }> {
  const requests: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.headers);
    handler(req, res, requests.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/cifar-10-binary.tar.gz`,
    requests,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** Serves `body`, honouring `Range: bytes=N-` with a 206. */
export function sendWithRange(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416).end();
      return;
    }
    res.writeHead(206, {
      'content-length': body.length - start,
      'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
    });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': body.length });
  res.end(body);
}

/** A 32x32 HWC image enlarged k times (nearest neighbour) as RGBA, with `padTop` rows of `fill` above and below. */
export function upscale(img: Uint8Array, k: number, padTop = 0, fill = 0): { width: number; height: number; data: Buffer } {
  const w = IMAGE_SIZE * k;
  const h = IMAGE_SIZE * k + 2 * padTop;
  const data = Buffer.alloc(w * h * 4, fill);
  for (let y = 0; y < IMAGE_SIZE * k; y++) {
    for (let x = 0; x < w; x++) {
      const s = (Math.floor(y / k) * IMAGE_SIZE + Math.floor(x / k)) * 3;
      data.set([img[s]!, img[s + 1]!, img[s + 2]!, 255], ((y + padTop) * w + x) * 4);
    }
  }
  return { width: w, height: h, data };
}

/**
 * Where a tile of `image` (RGBA) differs from `hwc` (a 32x32 HWC image) enlarged `scale` times by nearest
 * neighbour with its top-left corner at (x, y), or null where every pixel matches.
 */
export function tileMismatch(image: { width: number; data: Uint8Array }, x: number, y: number, hwc: Uint8Array, scale: number): string | null {
  for (let ty = 0; ty < IMAGE_SIZE * scale; ty++) {
    for (let tx = 0; tx < IMAGE_SIZE * scale; tx++) {
      const o = ((y + ty) * image.width + x + tx) * 4;
      const s = (Math.floor(ty / scale) * IMAGE_SIZE + Math.floor(tx / scale)) * 3;
      const got = [image.data[o], image.data[o + 1], image.data[o + 2]];
      const want = [hwc[s], hwc[s + 1], hwc[s + 2]];
      if (got.join() !== want.join()) return `pixel (${tx}, ${ty}): ${got} != ${want}`;
    }
  }
  return null;
}

/** max |a - b| / max(1, max |b|): how far a backend's numbers are from the reference's, relative to their size. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`${a.length} values against ${b.length}`);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

/** Small runs (4 steps an epoch) for the fault tests: what they test is what happens around training, not learning. */
export const SMALL_RUN = ['--batch-size', '16', '--seed', '4', '--threads', '1', '--limit-train', '64', '--limit-test', '32'];

/** No stack trace, no crash of Node.js or of emscripten in `stderr`: an error is the tool's one line. */
export const noTrace = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at |Unhandled|unexpected failure|Aborted\(/, stderr);

/** `bytes` written to a new file named `name` (an archive for `--url`). */
export function archiveFile(bytes: Buffer, name = 'cifar-10-binary.tar.gz'): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** A tmpfs of `size` mounted at a new folder (root only), or the reason there is none. */
export function tmpfs(size: string, ro = false): { dir: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs';
  const dir = tmpDir('alexnet-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `${ro ? 'ro,' : ''}size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch (e) {
    return `mount -t tmpfs failed: ${(e as Error).message.split('\n')[0]}`;
  }
  return { dir, unmount: () => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }) };
}

/** Why no tmpfs can be mounted here (a skip reason), or false: one is mounted and unmounted to find out. */
export function cannotMount(): string | false {
  const probe = tmpfs('64k');
  if (typeof probe === 'string') return probe;
  probe.unmount();
  return false;
}

const trained = new Map<Buffer, Promise<{ model: string; data: string[]; dataDir: string }>>();

/**
 * A one-epoch checkpoint (SMALL_RUN) on `archive`, and the data flags and dir it was trained with: made once per
 * test process and archive.
 */
export function trainedModel(archive: Buffer): Promise<{ model: string; data: string[]; dataDir: string }> {
  if (!trained.has(archive)) {
    trained.set(archive, (async () => {
      const model = path.join(tmpDir(), 'run');
      const dataDir = tmpDir();
      const data = ['--data-dir', dataDir, '--url', archiveFile(archive), '--no-verify'];
      const r = await runCli(['train', '--epochs', '1', '--save', model, ...SMALL_RUN, ...data, '-q']);
      assert.equal(r.code, 0, r.stderr);
      return { model, data, dataDir };
    })());
  }
  return trained.get(archive)!;
}

/**
 * The options of an in-process run (src/run.ts) on the archive `served` serves, on wasm with `threads`: what the
 * in-process training tests start from; `over` replaces any of them.
 */
export function runOptions(served: { dataDir: string; url: string }, base: { recipe: Recipe; limits: Limits; threads: number }, over: Partial<TrainingOptions> = {}): TrainingOptions {
  return {
    recipe: base.recipe,
    limits: base.limits,
    explicit: new Set(),
    data: { dataDir: served.dataDir, url: served.url, md5: null, force: false, explicit: true },
    backend: 'wasm',
    gpu: false,
    settings: { threads: base.threads },
    save: null,
    resume: null,
    ...over,
  };
}

/**
 * Starts backend `name` in this test process (a second call switches back to it), as `--backend NAME` does but
 * without the command's once-only choice: the in-process tests run one backend after another.
 */
export async function useBackend(name: BackendName): Promise<ActiveBackend> {
  tf.env().set('PROD', true);
  const r = await (await backendEntry(name).load()).start({ gpuOnly: false, auto: false, why: 'for a test' });
  if (!r.ok) throw new Error(`${name}: ${r.reason}`);
  return r.backend;
}
