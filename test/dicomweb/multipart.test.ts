import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ArenaAllocator, BufferPool, MultipartError, MultipartParser, parseMultipartStream, type MultipartPart } from '../../src/dicom/dicomweb/multipart.js';
import { parseContentType } from '../../src/dicom/dicomweb/content-type.js';

/** Builds a multipart/related body the way PACS do (optionally without Content-Length, with preamble). */
function build(bodies: Buffer[], boundary: string, opts: { contentLength?: boolean; preamble?: string; epilogue?: string } = {}): Buffer {
  const out: Buffer[] = [];
  if (opts.preamble !== undefined) out.push(Buffer.from(`${opts.preamble}\r\n`));
  for (const b of bodies) {
    let head = `--${boundary}\r\nContent-Type: application/dicom\r\n`;
    if (opts.contentLength !== false) head += `Content-Length: ${b.length}\r\n`;
    out.push(Buffer.from(`${head}\r\n`), b, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--${opts.epilogue ?? '\r\n'}`));
  return Buffer.concat(out);
}

/** Splits `buf` into chunks of pseudo-random sizes (including 1-byte chunks) from a fixed seed. */
function chop(buf: Buffer, seed: number, maxChunk: number): Buffer[] {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; ) {
    const n = Math.max(1, Math.floor(rnd() * maxChunk));
    out.push(buf.subarray(off, off + n));
    off += n;
  }
  return out;
}

async function* iter(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

async function collect(chunks: Buffer[], boundary: string): Promise<MultipartPart[]> {
  const parts: MultipartPart[] = [];
  for await (const p of parseMultipartStream(iter(chunks), boundary)) parts.push(p);
  return parts;
}

describe('multipart/related streaming parser', () => {
  const boundary = 'a1b2c3d4-e5f6-7890-abcd-ef1234567890-0fedcba9-8765-4321';
  // Bodies that contain near-miss boundary text and CR/LF runs, which a naive scanner gets wrong.
  const bodies = [
    randomBytes(5000),
    Buffer.from(`\r\n--${boundary.slice(0, 20)}\r\n\r\n--`),
    Buffer.alloc(0),
    Buffer.concat([randomBytes(300), Buffer.from(`\r\n-${boundary}`), randomBytes(77)]),
    randomBytes(70_000),
  ];

  for (const contentLength of [true, false]) {
    for (const maxChunk of [1, 7, 64, 100_000]) {
      it(`returns every part byte-exact (Content-Length ${contentLength}, chunks <= ${maxChunk} B)`, async () => {
        // Tiny chunks on the 70 kB body only slow the suite down; the seams are the same.
        const use = maxChunk < 64 ? bodies.slice(0, 4) : bodies;
        const body = build(use, boundary, { contentLength, preamble: 'ignored preamble', epilogue: '\r\nignored epilogue' });
        const parts = await collect(chop(body, maxChunk * 31 + 1, maxChunk), boundary);
        expect(parts.map((p) => p.index)).toEqual(use.map((_, i) => i));
        parts.forEach((p, i) => {
          expect(p.body.equals(use[i])).toBe(true);
          expect(p.headers['content-type']).toBe('application/dicom');
          expect(p.contentType.mediaType).toBe('application/dicom');
        });
      });
    }
  }

  it('emits parts as they arrive, before the response has ended', () => {
    const body = build(bodies.slice(0, 2), boundary);
    const parser = new MultipartParser(boundary);
    const cut = body.indexOf(`--${boundary}`, 10) + 4 + boundary.length; // just past the second delimiter line start
    const first = parser.push(body.subarray(0, cut));
    expect(first).toHaveLength(1);
    expect(first[0].body.equals(bodies[0])).toBe(true);
    const rest = parser.push(body.subarray(cut));
    expect(rest).toHaveLength(1);
    expect(parser.complete).toBe(true);
  });

  it('a body cut short is a truncated error that says how many parts were complete', async () => {
    const body = build(bodies, boundary);
    const truncated = body.subarray(0, body.length - 40_000);
    const err = await collect(chop(truncated, 5, 4096), boundary).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MultipartError);
    expect((err as MultipartError).reason).toBe('truncated');
    expect((err as MultipartError).partsReceived).toBe(4);
    expect((err as MultipartError).message).toMatch(/ended early, after 4 complete part/);
  });

  it('a body missing only the close delimiter is truncated too', async () => {
    const body = build(bodies.slice(0, 1), boundary, { contentLength: false });
    const noClose = body.subarray(0, body.lastIndexOf(`--${boundary}--`));
    const err = await collect([noClose], boundary).catch((e: unknown) => e);
    expect((err as MultipartError).reason).toBe('truncated');
  });

  it('an empty response is truncated before the first part', async () => {
    const err = await collect([], boundary).catch((e: unknown) => e);
    expect((err as MultipartError).message).toMatch(/before the first part/);
  });

  it('a Content-Length that disagrees with the delimiter is malformed', async () => {
    const body = build([Buffer.from('0123456789')], boundary).toString('latin1').replace('Content-Length: 10', 'Content-Length: 8');
    const err = await collect([Buffer.from(body, 'latin1')], boundary).catch((e: unknown) => e);
    expect((err as MultipartError).reason).toBe('malformed');
  });
});

describe('ArenaAllocator', () => {
  it('hands out disjoint, 8-byte aligned slices of shared blocks, and big bodies on their own', () => {
    const arena = new ArenaAllocator(1024);
    const a = arena.alloc(13);
    const b = arena.alloc(100);
    const c = arena.alloc(900); // > block/4: own allocation
    expect(a.buffer).toBe(b.buffer);
    expect(b.byteOffset % 8).toBe(0);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 13);
    expect(c.buffer).not.toBe(a.buffer);
    a.fill(1);
    b.fill(2);
    expect(a.every((x) => x === 1)).toBe(true);
    const parts: Buffer[] = [];
    for (let i = 0; i < 20; i++) parts.push(arena.alloc(200).fill(i));
    parts.forEach((p, i) => expect(p.every((x) => x === i)).toBe(true));
  });
});

describe('BufferPool', () => {
  it('reuses released bodies, never hands out one that is still in use, ignores foreign buffers', () => {
    const pool = new BufferPool(2);
    const a = pool.alloc(1000);
    const b = pool.alloc(1000);
    expect(a.buffer).not.toBe(b.buffer);
    pool.release(a);
    const c = pool.alloc(900);
    expect(c.buffer).toBe(a.buffer);
    expect(c.length).toBe(900);
    expect(pool.alloc(1000).buffer).not.toBe(b.buffer); // b was never released
    pool.release(Buffer.alloc(10)); // not ours: ignored
    expect(pool.alloc(10).buffer).not.toBe(c.buffer);
  });
});

describe('lenient Content-Type parsing', () => {
  it('reads the transfer syntax Orthanc puts inside the quoted type', () => {
    const ct = parseContentType(
      'multipart/related; type="application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"; boundary=94fc4e1f-5a3c',
    );
    expect(ct.mediaType).toBe('multipart/related');
    expect(ct.type).toBe('application/octet-stream');
    expect(ct.transferSyntax).toBe('1.2.840.10008.1.2.1');
    expect(ct.params.boundary).toBe('94fc4e1f-5a3c');
  });

  it('reads standard parameters, quoted boundaries and odd case', () => {
    const ct = parseContentType('Multipart/Related; Type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80; BOUNDARY="x;y=z"');
    expect(ct.mediaType).toBe('multipart/related');
    expect(ct.type).toBe('application/dicom');
    expect(ct.transferSyntax).toBe('1.2.840.10008.1.2.4.80');
    expect(ct.params.boundary).toBe('x;y=z');
  });

  it('tolerates an absent header', () => {
    expect(parseContentType(undefined).mediaType).toBe('');
  });
});
