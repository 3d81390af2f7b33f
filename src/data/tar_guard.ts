// A guard in front of the tar parser (issue #20): it follows the archive's headers as the decompressed bytes go
// by, so that unpacking stops where it should, within a chunk, whatever the archive holds:
// - at the end-of-archive marker (a zero block): what follows is not read. A 65 KB gzip of 64 MiB of zeros kept
//   the unpacking busy for 128 s, and a 331 KB archive of zero blocks for more than 500 s at 639 MB RSS, while
//   tar's parser went through them a block at a time;
// - at a member that cannot be CIFAR-10's (anything but the batches, batches.meta.txt and a small readme):
//   refused at its header, before its bytes are read;
// - at a total past what the official archive unpacks to.
// Pure: bytes in, bytes to parse out; the caller feeds the parser and stops the source when `ended`.

const BLOCK = 512;

export interface GuardCaps {
  total: number; // bytes of tar in all
  member: (name: string) => number; // most bytes a member of this name may have
  title?: string; // the data set, for messages (default CIFAR-10)
}

export class TarGuardError extends Error {}

export class TarGuard {
  private header = Buffer.alloc(0); // a header block being gathered
  private remaining = 0; // bytes of the current member (data and padding) still to pass
  private longName: string | null = null; // a GNU long name (type L) for the next header
  private collecting: { kind: 'name' | 'pax'; parts: Buffer[] } | null = null; // a long name's or pax header's data
  private seen = 0;
  ended = false;

  constructor(private readonly caps: GuardCaps) {}

  /** The part of `chunk` to hand to the parser: all of it, or up to and including the end-of-archive marker. */
  take(chunk: Buffer): Buffer {
    if (this.ended) return Buffer.alloc(0);
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - at);
        this.collecting?.parts.push(chunk.subarray(at, at + n));
        this.remaining -= n;
        at += n;
        if (this.remaining === 0 && this.collecting) this.collected(this.collecting.kind, Buffer.concat(this.collecting.parts).toString('utf8'));
        continue;
      }
      const n = Math.min(BLOCK - this.header.length, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + n)]);
      at += n;
      if (this.header.length === BLOCK) this.onHeader(this.header);
      if (this.header.length === BLOCK) this.header = Buffer.alloc(0);
    }
    this.seen += at;
    if (this.seen > this.caps.total) throw new TarGuardError(`it unpacks to more than ${this.caps.total.toLocaleString('en-US')} bytes, more than ${this.caps.title ?? 'CIFAR-10'} holds`);
    // Where the marker ended the archive, the parser gets it too (a second zero block: tar's own marker is two).
    return this.ended ? Buffer.concat([chunk.subarray(0, at), Buffer.alloc(BLOCK)]) : chunk;
  }

  private onHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const field = (from: number, len: number) => h.subarray(from, from + len).toString('latin1').replace(/\0.*$/s, '');
    const type = field(156, 1) || '0';
    if (h[124]! & 0x80) throw new TarGuardError('a member has a size in base-256 (over 8 GB)');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) throw new TarGuardError('a member header has no valid size');
    const prefix = field(257, 6).startsWith('ustar') ? field(345, 155) : '';
    const name = this.longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    this.longName = null;
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      if (size > 4096) throw new TarGuardError('a member has a long name of more than 4,096 bytes');
      this.collecting = { kind: 'name', parts: [] };
    } else if (type === 'x' || type === 'g') {
      if (size > 65536) throw new TarGuardError('a pax header is larger than 64 KB');
      this.collecting = { kind: 'pax', parts: [] };
    } else if (size > this.caps.member(name)) {
      throw new TarGuardError(`member ${JSON.stringify(name)} is ${size.toLocaleString('en-US')} bytes, more than a member of ${this.caps.title ?? 'CIFAR-10'} of that name has (${this.caps.member(name).toLocaleString('en-US')})`);
    }
    this.remaining = padded;
    if (this.remaining === 0 && this.collecting) this.collected(this.collecting.kind, '');
  }

  private collected(kind: 'name' | 'pax', text: string): void {
    this.collecting = null;
    if (kind === 'name') this.longName = text.replace(/\0.*$/s, '');
    // A pax size would move the members' boundaries away from the headers' (tar's parser follows it): CIFAR-10's
    // members are far below the 8 GB that needs one.
    else if (/(^|\n)\d+ size=/.test(text)) throw new TarGuardError('a pax header sets a member\'s size');
  }
}
