import type { Readable } from 'node:stream';
import { VbmdError } from '../../util/errors.js';

/**
 * Parsed JSON values of an NDJSON stream, in batches: one batch per chunk read (64 KiB by default, a few
 * dozen resources). Lines are split and parsed synchronously within a chunk, so the parsed objects die young
 * and the garbage collector never lets them pile up (per-line async iteration kept them alive long enough to
 * be promoted, and the heap grew to ~200 MB on a 1.7 GB file). Only the current chunk and a partial last line
 * are held. A line that is not JSON stops the run with its place named: a silently shortened cohort would be
 * a wrong answer that looks right.
 */
export async function* ndjsonBatches(stream: Readable, where: string): AsyncGenerator<unknown[]> {
  stream.setEncoding('utf8');
  let carry = '';
  let lineNo = 0;
  const parse = (line: string, batch: unknown[]) => {
    lineNo++;
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text.length === 0 || /^\s*$/.test(text)) return;
    try {
      batch.push(JSON.parse(text));
    } catch {
      throw new VbmdError('bad-input', `Line ${lineNo} of ${where} is not valid JSON; fix or remove it and run again.`, { lineNo });
    }
  };
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const batch: unknown[] = [];
      let start = 0;
      let nl = chunk.indexOf('\n');
      if (nl >= 0 && carry.length > 0) {
        parse(carry + chunk.slice(0, nl), batch);
        carry = '';
        start = nl + 1;
        nl = chunk.indexOf('\n', start);
      }
      while (nl >= 0) {
        parse(chunk.slice(start, nl), batch);
        start = nl + 1;
        nl = chunk.indexOf('\n', start);
      }
      carry += chunk.slice(start);
      if (batch.length > 0) yield batch;
    }
    if (carry.length > 0) {
      const batch: unknown[] = [];
      parse(carry, batch);
      carry = '';
      if (batch.length > 0) yield batch;
    }
  } finally {
    stream.destroy();
  }
}
