// One writer at a time for a data dir or a checkpoint dir (issue #13: two downloads into one data dir broke
// each other in 4 of 6 timings; two `train --save` runs into one dir interleaved checkpoints silently).
// A lock is a file created with O_EXCL holding the owner's pid; a lock whose pid is gone is stale and taken
// over, with a note.

import * as fsp from 'node:fs/promises';
import { AlexnetError } from './errors.js';

export interface LockOptions {
  /** What holds it, for messages: `a download into /data`. */
  what: string;
  /** Wait for the owner to finish (a download), or fail at once (a training run). */
  wait: boolean;
  hint: string;
  onNote?: (message: string) => void;
  signal?: AbortSignal;
  pollMs?: number;
}

/** Takes the lock `file`; returns the function that releases it. */
export async function acquireLock(file: string, opts: LockOptions): Promise<() => Promise<void>> {
  let waited = false;
  for (;;) {
    try {
      const fh = await fsp.open(file, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      const release = async () => {
        const owner = await fsp.readFile(file, 'utf8').catch(() => '');
        if (Number(owner.trim()) === process.pid) await fsp.rm(file, { force: true });
      };
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await fsp.readFile(file, 'utf8').catch(() => null);
    if (text === null) continue; // released between the two calls
    const pid = Number(text.trim());
    if (!Number.isSafeInteger(pid) || pid <= 0 || !pidAlive(pid)) {
      opts.onNote?.(`taking over the lock ${file} of a run that is gone (pid ${text.trim() || 'unknown'})`);
      await fsp.rm(file, { force: true });
      continue;
    }
    if (!opts.wait) throw new AlexnetError('LOCKED', `${opts.what} is already running (pid ${pid}; lock ${file})`, opts.hint);
    if (!waited) opts.onNote?.(`waiting for ${opts.what} by pid ${pid} to finish`);
    waited = true;
    if (opts.signal?.aborted) throw opts.signal.reason;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}

/** Whether a process with this pid runs (signal 0 checks without sending anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
