// The process's signals, pipes and way out: how Ctrl-C, SIGTERM and SIGHUP stop a command (a checkpoint being
// written finishes first), how a closed stdout stops it quietly, and how it leaves when it cannot wait.

import { closeBackend } from '../backends/lifecycle.js';
import { AlexnetError, EXIT_CODES } from '../errors.js';
import { stdoutError } from './output.js';

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
/** What to do once it is whole: `continue with \`alexnet train --resume DIR\``. */
let criticalHint = '';
/** A hint's commands as this process was started (cli.ts's asStarted), for the lines printed here. */
let hintText = (hint: string) => hint;

/**
 * Runs `fn` (a checkpoint write, `what`) so that a second Ctrl-C waits for it instead of cutting it in half, and says
 * so (it used to exit 130 without a word while best/ was written: issue #24), then where it is and how to go on
 * (`hint`), as the first Ctrl-C's error does.
 */
export async function critical<T>(what: string, fn: () => Promise<T>, hint = ''): Promise<T> {
  criticalDepth++;
  criticalWhat = what;
  criticalHint = hint;
  try {
    return await fn();
  } finally {
    criticalDepth--;
    if (criticalDepth === 0 && exitWhenSafe) leave(EXIT_CODES.INTERRUPTED, `error: interrupted again: stopped once ${what} was written whole${criticalHint ? `\nhint: ${hintText(criticalHint)}` : ''}`);
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
export function installProcessHandlers(asStarted: (hint: string) => string = (h) => h): void {
  hintText = asStarted;
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
