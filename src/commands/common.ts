// Helpers shared by the commands: turning flag strings into typed values once, and talking to stderr.
// Only the command layer uses these; the core takes typed options and reports through callbacks.

import { SingleBar } from 'cli-progress';
import { AlexnetError, EXIT_CODES } from '../errors.js';
import type { Progress } from '../data/download.js';
import { THREADS } from '../backends/table.js';

/** An integer flag in min..max; `example` is the value the hint suggests (the flag's usual value). */
export function parseIntFlag(name: string, min: number, max = Number.MAX_SAFE_INTEGER, example = Math.max(min, 1)) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`;
      throw new AlexnetError('USAGE', `${name} must be ${range}, got ${JSON.stringify(value)}`, `e.g. ${name} ${example}`);
    }
    return n;
  };
}

/** --threads: 1..MAX_THREADS, one per core (at most MAX_THREADS) when not given. */
export function parseThreads(value: string | undefined): number {
  return value === undefined ? THREADS.default() : parseIntFlag('--threads', 1, THREADS.max, THREADS.default())(value);
}

export function parsePositiveFloat(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
      throw new AlexnetError('USAGE', `${name} must be a positive number, got ${JSON.stringify(value)}`, `e.g. ${name} 0.1`);
    }
    return n;
  };
}

export function parseMd5(value: string): string {
  if (!/^[0-9a-fA-F]{32}$/.test(value)) {
    throw new AlexnetError('USAGE', `--md5 must be 32 hex digits, got ${JSON.stringify(value)}`, 'e.g. --md5 c32a1d4ab5d03f1284b67883e8d87530, or --no-verify');
  }
  return value.toLowerCase();
}

export const stderrIsTTY = (): boolean => Boolean(process.stderr.isTTY);

/** A line of log on stderr (never stdout: stdout is for results). */
export function logLine(message: string): void {
  process.stderr.write(message + '\n');
}

const MB = 1024 * 1024;

/**
 * Download progress: a cli-progress bar on a TTY, a plain line every ~10% otherwise, nothing when quiet.
 * Returns the callback and a `stop` that clears the bar.
 */
export function downloadProgress(quiet: boolean): { onProgress: (p: Progress) => void; stop: () => void } {
  if (quiet) return { onProgress: () => {}, stop: () => {} };
  if (stderrIsTTY()) {
    const bar = new SingleBar({
      stream: process.stderr,
      format: 'download [{bar}] {percentage}% | {got}/{all} MB | {rate} MB/s | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
    });
    let started = false;
    const t0 = Date.now();
    let first = 0;
    return {
      onProgress: (p) => {
        const total = p.total ?? Math.max(p.received, 1);
        if (!started) {
          started = true;
          first = p.received;
          bar.start(total, p.received, { got: '0.0', all: (total / MB).toFixed(1), rate: '0.0' });
        }
        const secs = Math.max((Date.now() - t0) / 1000, 1e-3);
        bar.setTotal(total);
        bar.update(p.received, {
          got: (p.received / MB).toFixed(1),
          all: (total / MB).toFixed(1),
          rate: ((p.received - first) / MB / secs).toFixed(1),
        });
      },
      stop: () => bar.stop(),
    };
  }
  let nextTenth = 1;
  return {
    onProgress: (p) => {
      if (p.total === null || p.total === 0) return;
      const tenth = Math.floor((p.received / p.total) * 10);
      if (tenth >= nextTenth) {
        nextTenth = tenth + 1;
        logLine(`download: ${tenth * 10}% (${(p.received / MB).toFixed(1)} of ${(p.total / MB).toFixed(1)} MB)`);
      }
    },
    stop: () => {},
  };
}

/**
 * An AbortSignal fired by the first SIGINT or SIGTERM, for cores that stop at a safe point. Returns a
 * `dispose` that removes the handlers.
 */
let criticalDepth = 0;
let exitWhenSafe = false;

/** Runs `fn` (a checkpoint write) so that a second Ctrl-C waits for it instead of cutting it in half. */
export async function critical<T>(fn: () => Promise<T>): Promise<T> {
  criticalDepth++;
  try {
    return await fn();
  } finally {
    criticalDepth--;
    if (criticalDepth === 0 && exitWhenSafe) process.exit(130);
  }
}

let owners = 0;
/** The first signal received: a command that takes the signals over later still stops for it. */
let received: NodeJS.Signals | null = null;
let stdoutClosed = false;
const onStdoutClosed = new Set<() => void>();

/**
 * Until a command takes the signals over (interruptSignal), Ctrl-C and SIGTERM end the process with the
 * promised message and 130 (SIGTERM during start-up used to exit 143 silently: issue #13). A reader that
 * closes stdout (`| head -1`) stops the command quietly with 141, as Unix tools stop; a training run first
 * finishes its checkpoint (EPIPE used to be a stack trace, or an unhandled 'error' event).
 */
export function installProcessHandlers(): void {
  const early = (sig: NodeJS.Signals) => {
    received ??= sig;
    if (owners > 0) return;
    process.stderr.write(`error: interrupted by ${sig}\n`);
    process.exit(EXIT_CODES.INTERRUPTED);
  };
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exitCode = EXIT_CODES.PIPE;
    if (stdoutClosed) return;
    stdoutClosed = true;
    if (owners === 0) process.exit(EXIT_CODES.PIPE); // nothing to finish
    onStdoutClosed.forEach((f) => f());
  });
}

/** Whether the reader of stdout has gone. */
export const isStdoutClosed = (): boolean => stdoutClosed;

export function interruptSignal(): { signal: AbortSignal; dispose: () => void; which: () => NodeJS.Signals | null } {
  const controller = new AbortController();
  let got: NodeJS.Signals | null = null;
  owners++;
  const onClosed = () => controller.abort(new AlexnetError('PIPE', 'stdout was closed'));
  onStdoutClosed.add(onClosed);
  const onSignal = (sig: NodeJS.Signals) => {
    if (got !== null) {
      // A second Ctrl-C: the user means it, but never in the middle of a checkpoint.
      if (criticalDepth > 0) exitWhenSafe = true;
      else process.exit(130);
      return;
    }
    got = sig;
    controller.abort(new AlexnetError('INTERRUPTED', `interrupted by ${sig}`));
  };
  if (received) onSignal(received);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    which: () => got,
    dispose: () => {
      owners--;
      onStdoutClosed.delete(onClosed);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Env knob for tests and CI: the first retry backoff, in ms. */
export function retryDelayFromEnv(): number | undefined {
  const v = process.env.ALEXNET_RETRY_DELAY_MS;
  return v === undefined ? undefined : parseIntFlag('ALEXNET_RETRY_DELAY_MS', 0)(v);
}
