// Helpers shared by the commands: turning flag strings into typed values once, talking to stdout and stderr,
// and the process's signals, pipes and way out. Only the command layer uses these; the core takes typed options
// and reports through callbacks.

import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import { closeBackend } from '../backends/lifecycle.js';
import { BACKEND_OPTIONS } from '../backends/table.js';
import type { Settings } from '../backends/types.js';
import type { Progress, TransferOptions } from '../data/download.js';
import { printable } from '../text.js';
import { AlexnetError, EXIT_CODES } from '../errors.js';
import { errnoCode, errnoWords } from '../files.js';
import { int, parseField, type Field } from '../recipe.js';

/** Where a command writes: results on stdout, everything else on stderr (STYLE.md). Tests pass their own. */
export interface Console {
  out(text: string): void;
  err(line: string): void;
  /** Whether stderr is a terminal: progress bars only then. */
  readonly errIsTTY: boolean;
}

export const processConsole: Console = {
  out: (text) => {
    try {
      process.stdout.write(text);
    } catch (e) {
      // Written synchronously where stdout is a file or a device: `> /dev/full` throws ENOSPC here (issue #20).
      throw stdoutError(e);
    }
  },
  err: (line) => void process.stderr.write(printable(line) + '\n'),
  get errIsTTY() {
    return Boolean(process.stderr.isTTY);
  },
};

/** The error for a failed write of results: a closed pipe stops quietly (141), anything else is said (exit 1). */
function stdoutError(e: unknown): AlexnetError {
  if (errnoCode(e) === 'EPIPE') return new AlexnetError('PIPE', 'stdout was closed');
  return new AlexnetError('IO', `cannot write results: ${errnoWords(e)}`, 'send stdout where there is room (a file on another disk, or a pipe)');
}

/** A path flag's value: an empty one is refused (`--save ""` wrote into the current folder: issue #20). */
export function parsePath(flag: string, value: string): string {
  if (value.trim() === '') throw new AlexnetError('USAGE', `${flag} needs a path, got an empty one`, `e.g. ${flag} ./run1`);
  return path.resolve(value);
}

/** The log lines of a command: on stderr, or nowhere with --quiet. */
export const logger = (con: Console, quiet: boolean): ((line: string) => void) => (quiet ? () => {} : (line) => con.err(line));

/** An integer flag in min..max; `example` is the value the hint suggests (the flag's usual value). */
export function parseIntFlag(name: string, min: number, max = Number.MAX_SAFE_INTEGER, example = Math.max(min, 1)) {
  const field: Field<number> = { flag: name, arg: '<n>', help: '', default: undefined, kind: int(min, max), example: String(example) };
  return (value: string): number => parseField(field, value);
}

/**
 * The values of a table of fields (src/recipe.ts) from commander's flags, by key: a flag given on the command
 * line is parsed, else the field's default (commander hands defaults over as strings too: they parse the same).
 * Returns the values and which keys were given.
 */
export function parseFields<K extends string>(fields: Record<K, Field<unknown>>, flags: Record<string, unknown>, isExplicit: (key: string) => boolean): { values: Partial<Record<K, unknown>>; explicit: Set<K> } {
  const values: Partial<Record<K, unknown>> = {};
  const explicit = new Set<K>();
  for (const key of Object.keys(fields) as K[]) {
    // Commander names a value after its flag (--batch-size: batchSize), which is the key but for --recipe (preset).
    const name = fields[key].flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const text = flags[name];
    if (isExplicit(name)) explicit.add(key);
    // A switch (--nesterov, --no-nesterov) comes from commander as true or false; the rest as text.
    values[key] = typeof text === 'string' ? parseField(fields[key], text) : typeof text === 'boolean' && fields[key].kind.valid(text) ? text : fields[key].default;
  }
  return { values, explicit };
}

/** The backends' own options (--threads) given on the command line, parsed; the rest are left to the run. */
export function explicitSettings(flags: Record<string, unknown>, isExplicit: (key: string) => boolean): Settings {
  const settings: Settings = {};
  for (const [key, { field }] of Object.entries(BACKEND_OPTIONS)) {
    if (isExplicit(key) && typeof flags[key] === 'string') settings[key] = parseField<number | string>(field, flags[key]);
  }
  return settings;
}

export function parseMd5(value: string): string {
  if (!/^[0-9a-fA-F]{32}$/.test(value)) {
    throw new AlexnetError('USAGE', `--md5 must be 32 hex digits, got ${JSON.stringify(value)}`, 'e.g. --md5 c32a1d4ab5d03f1284b67883e8d87530, or --no-verify');
  }
  return value.toLowerCase();
}

const MB = 1024 * 1024;
/** A transfer shorter than this prints no progress lines where stderr is not a terminal. */
const QUIET_TRANSFER_MS = 1000;

/**
 * Download progress: a cli-progress bar on a terminal; otherwise a plain line every ~10%, but only once the
 * transfer has taken a second (a local 2 MB archive printed ten lines in a blink: issue #25); nothing when quiet.
 * Returns the callback and a `stop` that clears the bar.
 */
export function downloadProgress(con: Console, quiet: boolean): { onProgress: (p: Progress) => void; stop: () => void } {
  if (quiet) return { onProgress: () => {}, stop: () => {} };
  if (con.errIsTTY) {
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
  let began: number | null = null;
  return {
    onProgress: (p) => {
      if (p.total === null || p.total === 0) return;
      began ??= Date.now();
      const tenth = Math.floor((p.received / p.total) * 10);
      if (tenth >= nextTenth && Date.now() - began >= QUIET_TRANSFER_MS) {
        nextTenth = tenth + 1;
        con.err(`download: ${tenth * 10}% (${(p.received / MB).toFixed(1)} of ${(p.total / MB).toFixed(1)} MB)`);
      }
    },
    stop: () => {},
  };
}

/**
 * Env knobs for tests and CI: the first retry backoff and the stall time of a download, in ms, at most an hour
 * (Node.js's timers hold 2^31 ms: past that it warned and waited 1 ms, which failed a good download: issue #24).
 */
export function networkTimingFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<TransferOptions, 'retryDelayMs' | 'stallMs'> {
  const read = (name: string, min: number, example: number) => {
    const text = env[name];
    if (text === undefined) return undefined;
    const v = int(min, MAX_TIMING_MS).parse(text);
    if (v === undefined) throw new AlexnetError('USAGE', `${name} must be an integer in ${min}..${MAX_TIMING_MS} (ms), got ${JSON.stringify(text)}`, `e.g. ${name}=${example}, or unset it`);
    return v;
  };
  return { retryDelayMs: read('ALEXNET_RETRY_DELAY_MS', 0, 1000), stallMs: read('ALEXNET_STALL_MS', 1, 30000) };
}

/** The longest retry delay or stall time the environment may ask for: an hour. */
export const MAX_TIMING_MS = 3_600_000;

/**
 * The way out of the process other than returning from main (cli.ts): a signal that cannot wait. The device is
 * released first, as main's own exit does: `process.exit` with GPU work queued segfaulted 2 times in 37 on a
 * software adapter (issue #11).
 */
function leave(code: number, message?: string): void {
  if (message) process.stderr.write(message + '\n');
  void closeBackend().catch(() => {}).finally(() => process.exit(code));
}

/**
 * The signals that stop a command as Ctrl-C does: SIGHUP too, which a closed terminal or SSH session sends (it
 * used to kill a run without saving its position: issue #20).
 */
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

let criticalDepth = 0;
let exitWhenSafe = false;
/** What the write under way is, for the line a second Ctrl-C gets: `the checkpoint in DIR and its best/`. */
let criticalWhat = '';

/**
 * Runs `fn` (a checkpoint write, `what`) so that a second Ctrl-C waits for it instead of cutting it in half, and says
 * so (it used to exit 130 without a word while best/ was written: issue #24).
 */
export async function critical<T>(what: string, fn: () => Promise<T>): Promise<T> {
  criticalDepth++;
  criticalWhat = what;
  try {
    return await fn();
  } finally {
    criticalDepth--;
    if (criticalDepth === 0 && exitWhenSafe) leave(EXIT_CODES.INTERRUPTED, 'error: interrupted again: stopped once the write was whole');
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
    if (owners === 0) leave(EXIT_CODES.INTERRUPTED, `error: interrupted by ${sig}`);
  };
  for (const sig of SIGNALS) process.on(sig, early);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') {
      // Written asynchronously (a pipe or socket) and failed: say so and stop (an unhandled 'error' crashed).
      const err = stdoutError(e);
      leave(err.exitCode, `error: ${err.message}\nhint: ${err.hint}`);
      return;
    }
    process.exitCode = EXIT_CODES.PIPE;
    if (stdoutClosed) return;
    stdoutClosed = true;
    if (owners === 0) leave(EXIT_CODES.PIPE); // nothing to finish
    onStdoutClosed.forEach((f) => f());
  });
}

/** Whether the reader of stdout has gone. */
export const isStdoutClosed = (): boolean => stdoutClosed;

/**
 * An AbortSignal fired by the first SIGINT or SIGTERM (or a closed stdout), for cores that stop at a safe point.
 * A second Ctrl-C exits at once, but never in the middle of a checkpoint (see `critical`).
 */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void; which: () => NodeJS.Signals | null } {
  const controller = new AbortController();
  let got: NodeJS.Signals | null = null;
  owners++;
  const onClosed = () => controller.abort(new AlexnetError('PIPE', 'stdout was closed'));
  onStdoutClosed.add(onClosed);
  const onSignal = (sig: NodeJS.Signals) => {
    if (got !== null) {
      if (criticalDepth > 0 && !exitWhenSafe) process.stderr.write(`${sig} again: stopping as soon as ${criticalWhat} is written whole\n`);
      if (criticalDepth > 0) exitWhenSafe = true;
      else leave(EXIT_CODES.INTERRUPTED);
      return;
    }
    got = sig;
    controller.abort(new AlexnetError('INTERRUPTED', `interrupted by ${sig}`));
  };
  if (received) onSignal(received);
  for (const sig of SIGNALS) process.on(sig, onSignal);
  return {
    signal: controller.signal,
    which: () => got,
    dispose: () => {
      owners--;
      onStdoutClosed.delete(onClosed);
      for (const sig of SIGNALS) process.off(sig, onSignal);
    },
  };
}
