import { parseContentType, type MediaType } from './content-type.js';

/**
 * Streaming `multipart/related` parser (RFC 2046 §5.1, RFC 2387; PS3.18 §8.7.1) over a byte stream.
 *
 * Parts are emitted as soon as their closing delimiter arrives; the whole response is never held at once.
 * Bodies are Buffers (binary DICOM, never decoded as text). When a part declares `Content-Length` (Orthanc
 * and most PACS do) its bytes are copied straight into one preallocated Buffer and the delimiter is only
 * checked, not searched for; otherwise the body is scanned for `CRLF--boundary` with `Buffer.indexOf`,
 * including delimiters split across network chunks. A stream that ends before the close delimiter is an
 * error (`truncated`), so a cut connection never looks like a short series. Chunks given to `push` may be
 * reused by the caller afterwards: whatever the parser keeps is copied.
 */
export interface MultipartPart {
  /** 0-based position in the response. */
  index: number;
  /** Header names lower-case. */
  headers: Record<string, string>;
  contentType: MediaType;
  body: Buffer;
}

export type MultipartErrorReason = 'truncated' | 'malformed' | 'too-large';

export class MultipartError extends Error {
  override readonly name = 'MultipartError';
  constructor(
    readonly reason: MultipartErrorReason,
    message: string,
    /** Parts completely received before the failure. */
    readonly partsReceived: number,
  ) {
    super(message);
  }
}

/**
 * Hands out part bodies carved from large blocks instead of one allocation per part. Hundreds of
 * ~0.5 MB external allocations make V8 run full GCs over and over (measured: GC and first-touch copies
 * were most of the CPU of a 150 MB series retrieve); a few 16 MiB blocks do not. Offsets are 8-byte
 * aligned so typed-array views of pixel data stay aligned. A block lives as long as any part cut from it.
 */
export class ArenaAllocator {
  private block: Buffer | undefined;
  private used = 0;
  constructor(private readonly blockBytes = 16 * 1024 * 1024) {}

  alloc(byteLength: number): Buffer {
    if (byteLength > this.blockBytes / 4) return Buffer.allocUnsafeSlow(byteLength);
    const start = (this.used + 7) & ~7;
    if (!this.block || start + byteLength > this.block.length) {
      this.block = Buffer.allocUnsafeSlow(this.blockBytes);
      this.used = byteLength;
      return this.block.subarray(0, byteLength);
    }
    this.used = start + byteLength;
    return this.block.subarray(start, start + byteLength);
  }
}

/**
 * Reusable part buffers for consumers that are done with a part as soon as they have handled it (the
 * streamed volume path): `release` returns a body to the pool, so a whole series needs a handful of
 * buffers instead of fresh memory per instance (no page faults, no GC pressure).
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly mine = new WeakSet<ArrayBuffer>();
  constructor(private readonly maxFree = 8) {}

  alloc(byteLength: number): Buffer {
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i].byteLength >= byteLength) {
        const [ab] = this.free.splice(i, 1);
        return Buffer.from(ab, 0, byteLength);
      }
    }
    // Round up so slightly different part sizes reuse the same buffers.
    const ab = new ArrayBuffer(Math.ceil(byteLength / 65536) * 65536);
    this.mine.add(ab);
    return Buffer.from(ab, 0, byteLength);
  }

  /** Gives a body from `alloc` back; the caller must hold no view of it any more. */
  release(body: Uint8Array): void {
    const ab = body.buffer as ArrayBuffer;
    if (!this.mine.has(ab) || this.free.includes(ab) || this.free.length >= this.maxFree) return;
    this.free.push(ab);
  }
}

export interface MultipartOptions {
  /** Where part bodies with a Content-Length are allocated (default: a fresh ArenaAllocator per parser). */
  allocate?: (byteLength: number) => Buffer;
  /** Largest header block of one part (default 64 KiB). */
  maxHeaderBytes?: number;
  /** Largest part body (default 2 GiB); protects memory from a broken or hostile server. */
  maxPartBytes?: number;
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

type State = 'preamble' | 'after-delimiter' | 'headers' | 'body-length' | 'check-delimiter' | 'body-scan' | 'epilogue';

/** Incremental parser: `push(chunk)` returns the parts completed by that chunk; `end()` checks completeness. */
export class MultipartParser {
  private readonly delimiter: Buffer;
  private readonly maxHeaderBytes: number;
  private readonly maxPartBytes: number;
  private readonly allocate: (byteLength: number) => Buffer;
  private state: State = 'preamble';
  /** Small accumulator for the delimiter line, header block and delimiter check. */
  private small: Buffer = Buffer.alloc(0);
  private headers: Record<string, string> = {};
  private contentType: MediaType = parseContentType('');
  private bodyChunks: Buffer[] = [];
  private bodyLength = 0;
  private fixedBody: Buffer | undefined;
  private filled = 0;
  private index = 0;
  private out: MultipartPart[] = [];

  constructor(boundary: string, options: MultipartOptions = {}) {
    if (!boundary || boundary.length > 200) throw new MultipartError('malformed', 'The multipart response has no usable boundary.', 0);
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.maxHeaderBytes = options.maxHeaderBytes ?? 64 * 1024;
    this.maxPartBytes = options.maxPartBytes ?? 2 * 1024 * 1024 * 1024;
    if (options.allocate) this.allocate = options.allocate;
    else {
      const arena = new ArenaAllocator();
      this.allocate = (n) => arena.alloc(n);
    }
    // RFC 2046 lets the first delimiter start the body without a preceding CRLF: pretend there was one.
    this.bodyChunks = [CRLF];
    this.bodyLength = CRLF.length;
  }

  get partsReceived(): number {
    return this.index;
  }

  get complete(): boolean {
    return this.state === 'epilogue';
  }

  push(chunk: Uint8Array): MultipartPart[] {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.feed(buf);
    const done = this.out;
    this.out = [];
    return done;
  }

  end(): void {
    if (this.state === 'epilogue') return;
    const where = this.index === 0 ? 'before the first part' : `after ${this.index} complete part(s)`;
    throw new MultipartError('truncated', `The multipart response ended early, ${where}.`, this.index);
  }

  private fail(reason: MultipartErrorReason, message: string): never {
    throw new MultipartError(reason, message, this.index);
  }

  private feed(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      switch (this.state) {
        case 'epilogue':
          return; // RFC 2046: the epilogue is ignored.
        case 'preamble':
        case 'body-scan':
          off = this.scan(data, off);
          break;
        case 'after-delimiter':
          off = this.afterDelimiter(data, off);
          break;
        case 'headers':
          off = this.readHeaders(data, off);
          break;
        case 'body-length': {
          const body = this.fixedBody as Buffer;
          const n = Math.min(body.length - this.filled, data.length - off);
          data.copy(body, this.filled, off, off + n);
          this.filled += n;
          off += n;
          if (this.filled === body.length) {
            this.state = 'check-delimiter';
            this.small = Buffer.alloc(0);
          }
          break;
        }
        case 'check-delimiter': {
          const need = this.delimiter.length - this.small.length;
          const take = data.subarray(off, off + need);
          this.small = Buffer.concat([this.small, take]);
          off += take.length;
          if (this.small.length === this.delimiter.length) {
            if (!this.small.equals(this.delimiter)) {
              this.fail('malformed', `Part ${this.index + 1} of the multipart response does not end where its Content-Length says.`);
            }
            this.emit(this.fixedBody as Buffer);
            this.fixedBody = undefined;
            this.enterAfterDelimiter();
          }
          break;
        }
      }
    }
  }

  /** Searches for the delimiter in preamble or body; returns the new offset into `data`. */
  private scan(data: Buffer, off: number): number {
    const d = this.delimiter;
    const D = d.length;
    const rest = data.subarray(off);
    // A delimiter split between the bytes already held and this chunk.
    if (this.bodyLength > 0) {
      const tailLen = Math.min(D - 1, this.bodyLength);
      const tail = lastBytes(this.bodyChunks, tailLen);
      const seam = Buffer.concat([tail, rest.subarray(0, D - 1)]);
      const idx = seam.indexOf(d);
      if (idx >= 0 && idx < tailLen) {
        const cut = tailLen - idx;
        this.bodyLength -= cut;
        trimEnd(this.bodyChunks, cut);
        this.delimiterFound();
        return off + (D - cut);
      }
    }
    const idx = rest.indexOf(d);
    if (idx >= 0) {
      if (idx > 0) this.appendBody(rest.subarray(0, idx));
      this.delimiterFound();
      return off + idx + D;
    }
    this.appendBody(rest);
    if (this.state === 'preamble') {
      // Keep only what could start a delimiter; the preamble itself is ignored (RFC 2046).
      const keep = Buffer.from(lastBytes(this.bodyChunks, Math.min(D - 1, this.bodyLength)));
      this.bodyChunks = [keep];
      this.bodyLength = keep.length;
    }
    return data.length;
  }

  private appendBody(b: Buffer): void {
    if (b.length === 0) return;
    // Copied: pushed chunks may be views of a reused read buffer (raw-http.ts), valid only during push().
    this.bodyChunks.push(Buffer.from(b));
    this.bodyLength += b.length;
    if (this.state === 'body-scan' && this.bodyLength > this.maxPartBytes) {
      this.fail('too-large', `Part ${this.index + 1} of the multipart response is larger than ${this.maxPartBytes} bytes.`);
    }
  }

  private delimiterFound(): void {
    if (this.state === 'body-scan') {
      const body = this.bodyChunks.length === 1 ? this.bodyChunks[0] : Buffer.concat(this.bodyChunks, this.bodyLength);
      this.emit(body);
    }
    this.bodyChunks = [];
    this.bodyLength = 0;
    this.enterAfterDelimiter();
  }

  private enterAfterDelimiter(): void {
    this.state = 'after-delimiter';
    this.small = Buffer.alloc(0);
  }

  private emit(body: Buffer): void {
    this.out.push({ index: this.index, headers: this.headers, contentType: this.contentType, body });
    this.index++;
    this.headers = {};
  }

  /** After `--boundary`: either `--` (close delimiter) or optional padding and CRLF, then headers. */
  private afterDelimiter(data: Buffer, off: number): number {
    const start = this.small.length;
    const take = data.subarray(off, off + 256);
    const combined = Buffer.concat([this.small, take]);
    if (combined.length < 2) {
      this.small = combined;
      return off + take.length;
    }
    if (combined[0] === 0x2d && combined[1] === 0x2d) {
      this.state = 'epilogue';
      return data.length;
    }
    const crlf = combined.indexOf(CRLF);
    if (crlf < 0) {
      if (combined.length > 200) this.fail('malformed', 'The multipart response has a malformed boundary line.');
      this.small = combined;
      return off + take.length;
    }
    for (let i = 0; i < crlf; i++) {
      if (combined[i] !== 0x20 && combined[i] !== 0x09) this.fail('malformed', 'The multipart response has a malformed boundary line.');
    }
    // The header block starts at this CRLF so that "no headers" (CRLF CRLF) needs no special case.
    this.state = 'headers';
    if (crlf < start) {
      // The CRLF began in bytes held from the previous chunk: carry them, consume nothing new yet.
      this.small = Buffer.from(combined.subarray(crlf, start));
      return off;
    }
    this.small = Buffer.alloc(0);
    return off + (crlf - start);
  }

  private readHeaders(data: Buffer, off: number): number {
    const start = this.small.length;
    const take = data.subarray(off, off + Math.max(1, this.maxHeaderBytes + 4 - start));
    // Usually the whole header block is in this chunk: search it in place, copy only a leftover.
    const combined = start === 0 ? take : Buffer.concat([this.small, take]);
    const end = combined.indexOf(CRLFCRLF);
    if (end < 0) {
      if (combined.length >= this.maxHeaderBytes) this.fail('malformed', `Part ${this.index + 1} of the multipart response has an over-long header block.`);
      this.small = Buffer.from(combined);
      return off + take.length;
    }
    this.headers = parseHeaderBlock(combined.subarray(2, end).toString('latin1'));
    this.contentType = parseContentType(this.headers['content-type']);
    const consumed = end + 4 - start;
    const lenHeader = this.headers['content-length'];
    const len = lenHeader !== undefined && /^\s*\d+\s*$/.test(lenHeader) ? Number(lenHeader) : undefined;
    this.small = Buffer.alloc(0);
    if (len !== undefined) {
      if (len > this.maxPartBytes) this.fail('too-large', `Part ${this.index + 1} of the multipart response is larger than ${this.maxPartBytes} bytes.`);
      this.fixedBody = this.allocate(len);
      this.filled = 0;
      this.state = len === 0 ? 'check-delimiter' : 'body-length';
    } else {
      this.state = 'body-scan';
      this.bodyChunks = [];
      this.bodyLength = 0;
    }
    return off + consumed;
  }
}

function parseHeaderBlock(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\r\n')) {
    if (line.length === 0) continue;
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      headers[last] += ` ${line.trim()}`; // RFC 5322 folding
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[last] = headers[last] === undefined ? value : `${headers[last]}, ${value}`;
  }
  return headers;
}

/** The last `n` bytes held in `chunks` (n <= total). */
function lastBytes(chunks: Buffer[], n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const lastChunk = chunks[chunks.length - 1];
  if (lastChunk.length >= n) return lastChunk.subarray(lastChunk.length - n);
  const parts: Buffer[] = [];
  let need = n;
  for (let i = chunks.length - 1; i >= 0 && need > 0; i--) {
    const c = chunks[i];
    const take = Math.min(need, c.length);
    parts.unshift(c.subarray(c.length - take));
    need -= take;
  }
  return Buffer.concat(parts);
}

/** Drops the last `n` bytes from `chunks` in place. */
function trimEnd(chunks: Buffer[], n: number): void {
  let left = n;
  while (left > 0 && chunks.length > 0) {
    const c = chunks[chunks.length - 1];
    if (c.length <= left) {
      chunks.pop();
      left -= c.length;
    } else {
      chunks[chunks.length - 1] = c.subarray(0, c.length - left);
      left = 0;
    }
  }
}

/** Async-iterates the parts of a multipart byte stream; throws `MultipartError` on a truncated or malformed body. */
export async function* parseMultipartStream(
  stream: AsyncIterable<Uint8Array>,
  boundary: string,
  options?: MultipartOptions,
): AsyncGenerator<MultipartPart, void, undefined> {
  const parser = new MultipartParser(boundary, options);
  for await (const chunk of stream) {
    const parts = parser.push(chunk);
    for (const p of parts) yield p;
    if (parser.complete) break;
  }
  parser.end();
}
