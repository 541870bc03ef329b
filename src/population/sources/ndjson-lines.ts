import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { VbmdError } from '../../util/errors.js';

/**
 * Parsed JSON values of an NDJSON stream, one line at a time (readline keeps only the current line, so a
 * multi-gigabyte export never sits in memory). A line that is not JSON stops the run with its place named:
 * a silently shortened cohort would be a wrong answer that looks right.
 */
export async function* ndjsonValues(stream: Readable, where: string): AsyncGenerator<unknown> {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.length === 0 || /^\s*$/.test(line)) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new VbmdError('bad-input', `Line ${lineNo} of ${where} is not valid JSON; fix or remove it and run again.`, { lineNo });
      }
      yield value;
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}
