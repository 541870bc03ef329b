import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { VbmdError } from '../../util/errors.js';
import type { CohortRow } from '../aggregate.js';
import { cohortCsvRows, CSV_HEADER } from './csv.js';
import { cohortNdjson } from './ndjson.js';

/**
 * CSV or NDJSON rows written as they arrive (runCohortSql's onRows), so a cohort of millions of patients is
 * never held in memory. A file is written as FILE.part and renamed when complete, removed on failure: a
 * half-written file never looks like an answer.
 */
export class RowSink {
  private out: Writable | undefined;
  private file: WriteStream | undefined;
  private failure: Error | undefined;
  private started = false;

  constructor(
    private readonly format: 'csv' | 'ndjson',
    private readonly target: { path: string } | { stream: Writable },
  ) {}

  private open(): Writable {
    if (this.out) return this.out;
    if ('stream' in this.target) this.out = this.target.stream;
    else {
      const path = this.target.path;
      this.file = createWriteStream(`${path}.part`);
      this.file.once('error', (err) => {
        this.failure = new VbmdError('bad-input', `Cannot write ${path}: ${err.message}.`);
      });
      this.out = this.file;
    }
    return this.out;
  }

  /** Waits for an event of the output; a write error becomes the sink's one-sentence failure. */
  private async until(out: Writable, event: 'drain' | 'finish'): Promise<void> {
    try {
      await once(out, event);
    } catch (e) {
      throw this.failure ?? e;
    }
    if (this.failure) throw this.failure;
  }

  private async put(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    const out = this.open();
    if (!out.write(text)) await this.until(out, 'drain');
    if (this.failure) throw this.failure;
  }

  async write(rows: readonly CohortRow[]): Promise<void> {
    let text = '';
    if (!this.started && this.format === 'csv') text += CSV_HEADER;
    this.started = true;
    for (const chunk of this.format === 'csv' ? cohortCsvRows(rows) : cohortNdjson(rows)) text += chunk;
    if (text) await this.put(text);
  }

  /** Ends the output (a CSV with no rows still gets its header). */
  async finish(): Promise<void> {
    if (!this.started) await this.write([]);
    if (!this.file || !('path' in this.target)) return;
    this.file.end();
    await this.until(this.file, 'finish');
    await rename(`${this.target.path}.part`, this.target.path);
  }

  async abort(): Promise<void> {
    if (!this.file || !('path' in this.target)) return;
    // The stream opens its file asynchronously: removed before that open completed, the .part file came back
    // (empty) once it did. Wait until the stream has closed its descriptor, then remove it.
    const file = this.file;
    const closed = file.closed ? Promise.resolve() : once(file, 'close').then(() => undefined, () => undefined);
    file.destroy();
    await closed;
    await rm(`${this.target.path}.part`, { force: true });
  }
}
