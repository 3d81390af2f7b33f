// Fetching the CIFAR-10 archive: HTTP(S) with resume, retries and a streaming MD5, or a local file.
// The archive is written to `<dest>.part` and renamed to `<dest>` only once its checksum is verified, so a
// half-downloaded archive is never mistaken for a whole one; the `.part` stays for the next resume.

import { createHash, type Hash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlexnetError } from '../errors.js';
import { checkWriteTarget, diskError, errnoWords } from '../files.js';

export const OFFICIAL_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const OFFICIAL_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530'; // from the CIFAR-10 page
export const OFFICIAL_BYTES = 170_052_171;
export const ARCHIVE_NAME = 'cifar-10-binary.tar.gz';
/** CIFAR-100's binary version, from the same page (its MD5 as the page gives it). */
export const CIFAR100_URL = 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz';
export const CIFAR100_MD5 = '03b5dce01913d631647c71ecec9e9cb8';
/**
 * Where a download goes in the data dir (and its `.part`): a name only this tool writes, so that what it reuses or
 * removes is its own (a file the user left at DIR/cifar-10-binary.tar.gz was deleted by a download with --md5:
 * issue #20).
 */
export const DOWNLOAD_NAME = '.alexnet-download.tar.gz';
/**
 * The most a download may bring where the archive is not the official one (whose size is known exactly): more
 * than any CIFAR-format archive of 60,000 images (the official one unpacks to ~184 MB). An endless body or a
 * `Content-Length: 50000000000` filled a 150 MB disk in 1.2 s before the MD5 was checked at the end (issue #20).
 */
export const MAX_ARCHIVE_BYTES = 256 * 1024 * 1024;
/** A download (all its attempts) that takes longer than this stops: a drip of a byte every 0.5 s never ended. */
const DEADLINE_MS = 2 * 60 * 60 * 1000;
/** Less than this in a stall window (twice stallMs) is a stall too: the transfer is cut and resumed. */
const MIN_BYTES_PER_WINDOW = 64 * 1024;
/** The longest Retry-After a 429 or 503 is waited for. */
const MAX_RETRY_AFTER_MS = 60_000;

/** `url` as it may be printed: a password in it (`https://user:pw@host/...`) as `***`. */
export function shownUrl(url: string | URL): string {
  const text = String(url);
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

export interface Progress {
  received: number; // bytes of the archive on disk so far
  total: number | null; // null when the server does not say
}

/** How a transfer is watched and paced: what a command hands down to fetchArchive, through ensureData. */
export interface TransferOptions {
  onProgress?: (p: Progress) => void;
  retryDelayMs?: number; // first backoff; doubles per retry
  stallMs?: number; // a transfer with no byte for this long (or a drip: see MIN_BYTES_PER_WINDOW) is cut and resumed
  signal?: AbortSignal;
}

/** The TransferOptions of `o`, and nothing else of it. */
export const transferOf = (o: TransferOptions): TransferOptions => ({ onProgress: o.onProgress, retryDelayMs: o.retryDelayMs, stallMs: o.stallMs, signal: o.signal });

export interface FetchOptions extends TransferOptions {
  /** `http(s)://` or `file://` URL, or a plain path. */
  url: string;
  /** Where the verified archive goes (HTTP only; a local file is read in place). */
  dest: string;
  /** Expected MD5 (hex); null skips verification. */
  md5: string | null;
  /** Retries, stalls and resumes, one line each; for stderr. */
  onLog?: (message: string) => void;
  retries?: number; // further attempts after the first; 5 rides out a minute-long outage with backoff
  /** The most the archive may have; default: the official size for the official MD5, else MAX_ARCHIVE_BYTES. */
  maxBytes?: number;
}

export interface FetchResult {
  archivePath: string;
  bytes: number;
  md5: string;
}

export type Source = { kind: 'http'; url: URL } | { kind: 'file'; path: string };

/** `https://...` and `http://...` download; `file://...` and anything else is a local path. */
export function parseSource(url: string): Source {
  const hint = 'e.g. --url https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, --url file:///path/to/it.tar.gz or --url ./it.tar.gz';
  if (/^https?:\/\//i.test(url)) {
    try {
      return { kind: 'http', url: new URL(url) };
    } catch {
      throw new AlexnetError('USAGE', `--url ${JSON.stringify(shownUrl(url))} is not a valid URL`, hint);
    }
  }
  if (/^file:\/\//i.test(url)) {
    try {
      return { kind: 'file', path: fileURLToPath(url) };
    } catch (e) {
      // file://host/x names another machine's file (Node's "File URL host must be localhost or empty").
      throw new AlexnetError('USAGE', `--url ${JSON.stringify(url)} is not a local file URL (${(e as Error).message})`, hint);
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new AlexnetError('USAGE', `unsupported URL scheme in ${shownUrl(url)}`, 'use an http(s):// or file:// URL, or a path');
  }
  return { kind: 'file', path: url };
}

export async function fetchArchive(opts: FetchOptions): Promise<FetchResult> {
  const source = parseSource(opts.url);
  const result = source.kind === 'file' ? await hashLocal(source.path, opts) : await download(source.url, opts);
  if (opts.md5 !== null && result.md5 !== opts.md5.toLowerCase()) {
    if (source.kind === 'http') await fsp.rm(opts.dest + '.part', { force: true });
    const size = opts.md5.toLowerCase() === OFFICIAL_MD5 ? ` (${bytes(result.bytes)}; the official archive has ${bytes(OFFICIAL_BYTES)})` : ` (${bytes(result.bytes)})`;
    throw new AlexnetError(
      'CHECKSUM',
      `checksum mismatch for ${shownUrl(opts.url)}: MD5 ${result.md5}, expected ${opts.md5.toLowerCase()}${size}`,
      // An archive of one's own (a fixture, a re-encoding) has no published MD5: --no-verify is the way in.
      source.kind === 'http'
        ? 'the download was corrupted or the URL serves another file; run the command again, pass the right --md5, or --no-verify for an archive of your own'
        : 'the file is corrupted or not the CIFAR-10 binary archive; copy it again, pass the right --md5, or --no-verify for an archive of your own',
    );
  }
  if (source.kind === 'http') {
    await fsp.rename(opts.dest + '.part', opts.dest);
    return { ...result, archivePath: opts.dest };
  }
  return result;
}

async function hashLocal(path: string, opts: FetchOptions): Promise<FetchResult> {
  let total: number;
  try {
    const st = await fsp.stat(path);
    if (!st.isFile()) throw new Error('not a file');
    total = st.size;
  } catch {
    throw new AlexnetError('IO', `cannot read archive ${path}`, 'check the path given to --url');
  }
  const hash = createHash('md5');
  let received = 0;
  try {
    for await (const chunk of createReadStream(path, { signal: opts.signal })) {
      hash.update(chunk as Buffer);
      received += (chunk as Buffer).length;
      opts.onProgress?.({ received, total });
    }
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new AlexnetError('IO', `cannot read archive ${path}: ${errnoWords(e)}`, 'check the disk the archive is on, or copy it again');
  }
  return { archivePath: path, bytes: received, md5: hash.digest('hex') };
}

/** `170,052,171 bytes`. */
export const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;

/** Thrown inside an attempt for faults that a retry may cure (resets, 5xx, 429, stalls, short bodies). */
class Retryable extends Error {
  /** A name lookup failed: offline, most likely; one short retry, not five with backoff. */
  dns = false;
  /** What the server asked to wait (Retry-After), in ms. */
  after: number | null = null;
}

/** Retry-After (seconds, or an HTTP date) in ms, at most MAX_RETRY_AFTER_MS; null when absent or unreadable. */
function retryAfter(res: http.IncomingMessage): number | null {
  const v = res.headers['retry-after'];
  if (typeof v !== 'string') return null;
  const ms = /^\d+$/.test(v.trim()) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : null;
}

/** The most this download may bring, and that limit in words: the official archive's size for its MD5, else MAX_ARCHIVE_BYTES. */
function sizeCap(opts: FetchOptions): { bytes: number; words: string } {
  if (opts.maxBytes !== undefined) return { bytes: opts.maxBytes, words: `the ${bytes(opts.maxBytes)} allowed` };
  return opts.md5?.toLowerCase() === OFFICIAL_MD5
    ? { bytes: OFFICIAL_BYTES, words: `the official archive's ${bytes(OFFICIAL_BYTES)}` }
    : { bytes: MAX_ARCHIVE_BYTES, words: `the ${bytes(MAX_ARCHIVE_BYTES)} a CIFAR-10 archive can have` };
}

const tooLarge = (url: URL, what: string, opts: FetchOptions) =>
  new AlexnetError('HTTP', `${shownUrl(url)} ${what}, more than ${sizeCap(opts).words}`, 'check --url: it does not serve the CIFAR-10 binary archive');

/** The archive's file name as its URL gives it (cifar-100-binary.tar.gz for CIFAR-100's), for the offline hint. */
const archiveOf = (url: URL) => path.posix.basename(url.pathname) || ARCHIVE_NAME;
/** `--dataset cifar100` where the URL is CIFAR-100's, so that the hint's command fetches the same data set. */
const datasetFlag = (url: URL) => (/cifar-100/i.test(url.pathname) ? ' --dataset cifar100' : '');

const MAX_REDIRECTS = 5;
/** The longest wait between two attempts (a server's Retry-After included): an hour. */
const MAX_RETRY_DELAY_MS = 3_600_000;

/**
 * The wait before attempt `attempt + 2`: the server's Retry-After (`after`), else `base` doubled per attempt (a DNS
 * failure: at most a second), and never more than an hour: doubled past 2^31 ms, Node.js's timer fired at once
 * (issue #24).
 */
export function retryDelay(base: number, attempt: number, after: number | null | undefined, dns: boolean): number {
  return Math.min(after ?? (dns ? Math.min(base, 1000) : base * 2 ** attempt), MAX_RETRY_DELAY_MS);
}

async function download(url: URL, opts: FetchOptions): Promise<FetchResult> {
  const part = opts.dest + '.part';
  const retries = opts.retries ?? 5;
  const baseDelay = opts.retryDelayMs ?? 1000;
  const deadline = Date.now() + DEADLINE_MS;
  for (let attempt = 0; ; attempt++) {
    if (Date.now() > deadline) {
      throw new AlexnetError('NETWORK', `the download of ${shownUrl(url)} took more than ${DEADLINE_MS / 3_600_000} hours`, `run the command again to resume from ${part}, or copy the archive by hand and pass --url PATH`);
    }
    try {
      return await attemptDownload(url, part, opts);
    } catch (e) {
      const disk = diskError(e, `downloading into ${path.dirname(part)}`, ` or pass another --data-dir (the download needs ~${Math.ceil(OFFICIAL_BYTES / 1e6)} MB, the unpacked data ~185 MB)`);
      if (disk) throw disk;
      if (!(e instanceof Retryable)) throw e;
      // Offline, a DNS failure does not cure itself in a minute (issue #14): one short retry, then the recipe.
      if (e.dns && attempt >= 1) {
        throw new AlexnetError(
          'NETWORK',
          `cannot download ${shownUrl(url)}: ${e.message}`,
          // With the data dir it was downloading into: without it, the copy went to the default one (issue #25).
          `no network? copy ${archiveOf(url)} onto this machine by any means, then \`alexnet download${datasetFlag(url)} --data-dir ${path.dirname(opts.dest)} --url ./${archiveOf(url)}\` (README "Without internet")`,
        );
      }
      if (attempt >= retries) {
        const resumes = (await fileSize(part)) > 0 ? ` (it resumes from ${part})` : '';
        throw new AlexnetError(
          'NETWORK',
          `download of ${shownUrl(url)} failed after ${attempt + 1} attempts: ${e.message}`,
          `check the network and run the command again${resumes}, or copy the archive by hand and pass --url PATH`,
        );
      }
      const delay = retryDelay(baseDelay, attempt, e.after, e.dns);
      opts.onLog?.(`${e.message}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 2} of ${e.dns ? 2 : retries + 1})`);
      await sleep(delay, opts.signal);
    }
  }
}

async function attemptDownload(url: URL, part: string, opts: FetchOptions): Promise<FetchResult> {
  let offset = await fileSize(part);
  let res = await request(url, offset, opts);
  for (let hops = 0; isRedirect(res.statusCode) && res.headers.location; hops++) {
    res.resume();
    if (hops >= MAX_REDIRECTS) throw new AlexnetError('HTTP', `too many redirects from ${shownUrl(url)}`, 'check --url');
    const location = res.headers.location;
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new AlexnetError('HTTP', `${shownUrl(url)} redirected to an invalid location ${JSON.stringify(shownUrl(location))}`, 'check --url, or download the archive another way and pass --url PATH');
    }
    // A server may send us to http(s) only: never to a local file (file:) or another protocol.
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new AlexnetError('HTTP', `${shownUrl(url)} redirected to ${next.protocol} (${JSON.stringify(shownUrl(location))}), which is not followed`, 'check --url, or download the archive another way and pass --url PATH');
    }
    url = next;
    res = await request(url, offset, opts);
  }
  const status = res.statusCode ?? 0;
  if (status === 416 && offset > 0) {
    // The part is as long as (or longer than) the file: start over rather than guess.
    res.resume();
    await fsp.rm(part, { force: true });
    throw new Retryable(`server refused to resume at byte ${offset}`);
  }
  if (status >= 500 || status === 429) {
    res.resume();
    const r = new Retryable(`server answered ${status} ${res.statusMessage ?? ''}`.trim());
    r.after = retryAfter(res);
    throw r;
  }
  if (status < 200 || status >= 300) {
    res.resume();
    throw new AlexnetError(
      'HTTP',
      `${shownUrl(url)} answered ${status} ${res.statusMessage ?? ''}`.trim(),
      status === 404 ? 'check --url; for a copy made by hand, pass its path: --url ./cifar-10-binary.tar.gz' : 'check --url and access to it',
    );
  }

  let total: number | null = null;
  if (status === 206) {
    const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== offset) {
      res.resume();
      await fsp.rm(part, { force: true });
      throw new Retryable(`server resumed at the wrong byte (${res.headers['content-range'] ?? 'no Content-Range'})`);
    }
    if (m[2] !== '*') total = Number(m[2]);
    if (total !== null && total > sizeCap(opts).bytes) {
      res.destroy(); // not drained: the body is what is refused
      throw tooLarge(url, `announces ${bytes(total)}`, opts);
    }
    opts.onLog?.(`resuming at byte ${offset}`);
    // Hash what is on disk only once the server has agreed to resume: not on every retry, not for a restart.
    const hash = createHash('md5');
    await hashFile(part, hash);
    return finishBody(res, part, offset, hash, total, opts, url);
  }
  const length = contentLength(res);
  if (length !== null && length > sizeCap(opts).bytes) {
    res.destroy(); // not drained: the body is what is refused
    throw tooLarge(url, `announces ${bytes(length)}`, opts);
  }
  if (offset > 0) opts.onLog?.('server ignored the resume request; downloading from the start');
  return finishBody(res, part, 0, createHash('md5'), length, opts, url);
}

async function finishBody(
  res: http.IncomingMessage,
  part: string,
  offset: number,
  hash: Hash,
  total: number | null,
  opts: FetchOptions,
  url: URL,
): Promise<FetchResult> {
  // Never through a planted symlink or onto a device (issue #13): a regular file or a new one.
  await checkWriteTarget(part);
  const file = await fsp.open(part, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (offset > 0 ? constants.O_APPEND : constants.O_TRUNC), 0o644);
  let received = offset;
  const stallMs = opts.stallMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => res.destroy(new Retryable(`no data for ${stallMs / 1000} s`)), stallMs);
  };
  // A drip (a byte every 0.5 s) keeps the stall timer quiet: each window of twice stallMs must bring enough.
  let windowStart = received;
  const low = setInterval(() => {
    if (received - windowStart < MIN_BYTES_PER_WINDOW) res.destroy(new Retryable(`only ${received - windowStart} bytes in ${(2 * stallMs) / 1000} s`));
    windowStart = received;
  }, 2 * stallMs);
  const cap = sizeCap(opts).bytes;
  try {
    arm();
    opts.onProgress?.({ received, total });
    for await (const chunk of res) {
      arm();
      const buf = chunk as Buffer;
      if (received + buf.length > cap) throw tooLarge(url, `sent more than ${bytes(cap)}`, opts);
      await file.write(buf);
      hash.update(buf);
      received += buf.length;
      opts.onProgress?.({ received, total });
    }
  } catch (e) {
    if (e instanceof Retryable) throw e;
    if (e instanceof AlexnetError) {
      await fsp.rm(part, { force: true });
      throw e;
    }
    if (opts.signal?.aborted) throw e;
    if (diskError(e, '', '')) throw e; // the disk, not the connection
    throw new Retryable(`connection lost at byte ${received} (${(e as Error).message})`);
  } finally {
    clearTimeout(timer);
    clearInterval(low);
    await file.close();
  }
  if (total !== null && received !== total) {
    throw new Retryable(`connection closed at byte ${received} of ${total}`);
  }
  return { archivePath: part, bytes: received, md5: hash.digest('hex') };
}

function request(url: URL, offset: number, opts: FetchOptions): Promise<http.IncomingMessage> {
  const get = url.protocol === 'https:' ? https.get : http.get;
  const headers: Record<string, string> = { 'user-agent': 'alexnet-cli' };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, signal: opts.signal }, resolve);
    req.setTimeout(opts.stallMs ?? 30_000, () => req.destroy(new Error('no answer')));
    req.on('error', (e) => {
      if (opts.signal?.aborted) return reject(e);
      const code = (e as NodeJS.ErrnoException).code;
      const r = new Retryable(`cannot reach ${url.host}: ${code ?? e.message}${code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? ' (the name does not resolve)' : ''}`);
      r.dns = code === 'ENOTFOUND' || code === 'EAI_AGAIN';
      reject(r);
    });
  });
}

function contentLength(res: http.IncomingMessage): number | null {
  const n = Number(res.headers['content-length']);
  return Number.isFinite(n) && n > 0 ? n : null;
}

const isRedirect = (s: number | undefined) => s === 301 || s === 302 || s === 303 || s === 307 || s === 308;

async function fileSize(path: string): Promise<number> {
  try {
    return (await fsp.stat(path)).size;
  } catch {
    return 0;
  }
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}
