// One writer at a time for a data dir or a checkpoint dir (issue #13: two downloads into one data dir broke
// each other in 4 of 6 timings; two `train --save` runs into one dir interleaved checkpoints silently).
//
// A lock is a file holding its owner: pid, the boot it ran in and the process's start time (issue #20: a pid alone
// is not a process: in a container each run can be pid 1, so the next one waited forever for "pid 1", and any
// live, unrelated process that got the pid did the same). It is written whole under a temporary name and linked
// into place, so it is never seen empty; one that is (an older version's, being written) is waited for a moment.
// A lock whose owner is gone (another boot, a dead pid, a pid since reused, or our own pid: a previous process's)
// is taken over with a note; waiting for a live one is bounded.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { printable } from './text.js';
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
  /** How long to wait for a live owner before giving up (a download of 170 MB on a slow line takes a while). */
  maxWaitMs?: number;
}

/** Who holds a lock. boot and start are null where the platform does not tell (not Linux). */
export interface Owner {
  pid: number;
  boot: string | null; // /proc/sys/kernel/random/boot_id
  start: number | null; // the process's start time in clock ticks since boot (/proc/PID/stat field 22)
}

/** An empty lock younger than this is being written (by an older version, which wrote the pid after creating it). */
const BEING_WRITTEN_MS = 10_000;
const DEFAULT_MAX_WAIT_MS = 30 * 60 * 1000;

const readText = (file: string): string | null => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};

/** This boot's id, or null off Linux. */
const bootId = (): string | null => readText('/proc/sys/kernel/random/boot_id')?.trim() ?? null;

/** When process `pid` started (clock ticks since boot), or null where it is gone or the platform does not tell. */
export function startTime(pid: number): number | null {
  const stat = readText(`/proc/${pid}/stat`);
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields ? Number(fields[19]) : NaN;
  return Number.isSafeInteger(start) ? start : null;
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

export const currentOwner = (): Owner => ({ pid: process.pid, boot: bootId(), start: startTime(process.pid) });

/**
 * Removes what killed runs left in `dir` (temporary files and folders): each entry whose name `pattern` matches, its
 * first group the pid of the process that made it, where that process is gone or is this one (whose own work on
 * `dir` is done one piece at a time, so a temporary of its own is an earlier failure's).
 */
export async function removeLeftovers(dir: string, pattern: RegExp): Promise<void> {
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const pid = Number(pattern.exec(name)?.[1] ?? NaN);
    if (Number.isSafeInteger(pid) && (pid === process.pid || !pidAlive(pid))) await fsp.rm(path.join(dir, name), { recursive: true, force: true });
  }
}

/** A lock file's owner: this tool's JSON, or an older version's bare pid; null when empty or unreadable as either. */
export function parseOwner(text: string): Owner | null {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { pid: Number(t), boot: null, start: null };
  try {
    const o = JSON.parse(t) as Partial<Owner>;
    if (Number.isSafeInteger(o.pid) && o.pid! > 0) return { pid: o.pid!, boot: typeof o.boot === 'string' ? o.boot : null, start: Number.isSafeInteger(o.start) ? o.start! : null };
  } catch {
    // not JSON
  }
  return null;
}

/** Why `owner` no longer holds its lock, or null while it may. */
export function staleBecause(owner: Owner, me: Owner = currentOwner()): string | null {
  if (owner.pid === me.pid) return `pid ${owner.pid} is this process's own: a previous process had it`;
  if (owner.boot && me.boot && owner.boot !== me.boot) return `pid ${owner.pid} ran before the machine restarted`;
  if (!pidAlive(owner.pid)) return `pid ${owner.pid} is gone`;
  if (owner.start !== null && me.boot !== null) {
    const now = startTime(owner.pid);
    if (now !== null && now !== owner.start) return `pid ${owner.pid} is now another process`;
  }
  return null;
}

/** The temporaries `create` makes for the lock `name` (`.NAME.PID-HEX`), the pid in group 1. */
const lockTemporaries = (name: string) => new RegExp(`^\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)-[0-9a-f]{12}$`);

/** The live owner of the lock `file`, or null where there is none (no lock, an empty one, or its owner gone). */
export async function lockHolder(file: string): Promise<Owner | null> {
  const owner = parseOwner((await fsp.readFile(file, 'utf8').catch(() => '')) ?? '');
  return owner && staleBecause(owner) === null ? owner : null;
}

/** Takes the lock `file`; returns the function that releases it. */
export async function acquireLock(file: string, opts: LockOptions): Promise<() => Promise<void>> {
  const me = currentOwner();
  // A kill while a lock was being made left its temporary for good (issue #24).
  await removeLeftovers(path.dirname(file), lockTemporaries(path.basename(file)));
  const content = JSON.stringify(me) + '\n';
  const began = Date.now();
  let waited = false;
  for (;;) {
    if (await create(file, content)) {
      return async () => {
        const owner = parseOwner((await fsp.readFile(file, 'utf8').catch(() => '')) ?? '');
        if (owner?.pid === me.pid) await fsp.rm(file, { force: true });
      };
    }
    const text = await fsp.readFile(file, 'utf8').catch(() => null);
    if (text === null) continue; // released between the two calls
    const owner = parseOwner(text);
    let stale: string | null;
    if (owner === null) {
      const age = Date.now() - (await fsp.stat(file).then((s) => s.mtimeMs, () => Date.now()));
      stale = age >= BEING_WRITTEN_MS ? `it is empty or unreadable, and ${Math.round(age / 1000)} s old` : null;
    } else {
      stale = staleBecause(owner, me);
    }
    if (stale !== null) {
      opts.onNote?.(`taking over the lock ${file} of a run that is gone (${printable(stale)})`);
      await fsp.rm(file, { force: true });
      continue;
    }
    const who = owner ? `pid ${owner.pid}` : 'a run starting up';
    if (owner && !opts.wait) throw new AlexnetError('LOCKED', `${opts.what} is already running (${who}; lock ${file})`, opts.hint);
    if (Date.now() - began > (opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS)) {
      const waitedS = (Date.now() - began) / 1000;
      const after = waitedS < 120 ? `${waitedS.toFixed(1)} s` : `${Math.round(waitedS / 60)} minutes`;
      throw new AlexnetError('LOCKED', `gave up waiting for ${opts.what} (${who}) after ${after}`, `if no such run is going on, remove ${file}`);
    }
    if (!waited && owner) opts.onNote?.(`waiting for ${opts.what} by ${who} to finish`);
    waited ||= owner !== null;
    if (opts.signal?.aborted) throw opts.signal.reason;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}

/** Creates `file` holding `content`, whole or not at all (a temporary file linked into place); false if it exists. */
async function create(file: string, content: string): Promise<boolean> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.writeFile(tmp, content, { flag: 'wx', mode: 0o644 });
  try {
    await fsp.link(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw e;
    // A file system without hard links: created, then written (an instant empty, which readers wait out).
    try {
      await fsp.writeFile(file, content, { flag: 'wx', mode: 0o644 });
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}
