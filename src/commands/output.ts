// What a command prints: results on stdout, everything else on stderr (STYLE.md), the log, and download progress.
// Only the command layer uses these; the core reports through callbacks.

import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import type { Progress } from '../data/download.js';
import { AlexnetError } from '../errors.js';
import { errnoCode, errnoWords } from '../files.js';
import { printable } from '../text.js';

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
export function stdoutError(e: unknown): AlexnetError {
  if (errnoCode(e) === 'EPIPE') return new AlexnetError('PIPE', 'stdout was closed');
  return new AlexnetError('IO', `cannot write results: ${errnoWords(e)}`, 'send stdout where there is room (a file on another disk, or a pipe)');
}

/** The log lines of a command: on stderr, or nowhere with --quiet. */
export const logger = (con: Console, quiet: boolean): ((line: string) => void) => (quiet ? () => {} : (line) => con.err(line));

const MB = 1024 * 1024;
/** A transfer shorter than this prints no progress lines where stderr is not a terminal. */
const QUIET_TRANSFER_MS = 1000;

/** A progress bar on stderr, redrawn at most 10 times a second and cleared when done: each bar the tool shows. */
export const stderrBar = (format: string): SingleBar => new SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true, fps: 10 });

/**
 * Download progress: a cli-progress bar on a terminal; otherwise a plain line every ~10%, but only once the
 * transfer has taken a second (a local 2 MB archive printed ten lines in a blink: issue #25); nothing when quiet.
 * Returns the callback and a `stop` that clears the bar.
 */
export function downloadProgress(con: Console, quiet: boolean): { onProgress: (p: Progress) => void; stop: () => void } {
  if (quiet) return { onProgress: () => {}, stop: () => {} };
  if (con.errIsTTY) {
    const bar = stderrBar('download [{bar}] {percentage}% | {got}/{all} MB | {rate} MB/s | ETA {eta_formatted}');
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
 * Decoding an image folder into records (60,000 files took a minute in silence: issue #35): a bar of files, their
 * rate and the time left, on a terminal; elsewhere the folder's own log lines say it. Nothing when quiet.
 */
export function decodeProgress(con: Console, quiet: boolean): { onDecode: (done: number, total: number) => void; stop: () => void } {
  if (quiet || !con.errIsTTY) return { onDecode: () => {}, stop: () => {} };
  let bar: SingleBar | null = null;
  let t0 = 0;
  return {
    onDecode: (done, total) => {
      if (bar === null) {
        bar = stderrBar('decoding [{bar}] {value}/{total} files | {rate} files/s | ETA {eta_formatted}');
        t0 = Date.now();
        bar.start(total, 0, { rate: '-' });
      }
      const secs = (Date.now() - t0) / 1000;
      bar.update(done, { rate: secs > 0 ? (done / secs).toFixed(0) : '-' });
      if (done === total) {
        bar.stop();
        bar = null;
      }
    },
    stop: () => {
      bar?.stop();
      bar = null;
    },
  };
}

/** This tool's version, from package.json (`--version`, and the producer an export names). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
