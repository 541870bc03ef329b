import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../fhir/codes.js';
import { retryAfterMs } from '../../net/retry.js';
import { backoffDelayMs } from '../../util/retry-policy.js';
import type { TokenProvider } from '../../net/token-provider.js';
import { log } from '../../util/log.js';
import { VbmdError } from '../../util/errors.js';
import type { CohortResourceType } from '../resources.js';
import { fhirFetch, origin } from './http.js';
import { ndjsonBatches } from './ndjson-lines.js';
import type { ResourceSource, SourceReadOptions } from './types.js';

/** FHIR Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/export.html) completion manifest. */
const manifestSchema = z.object({
  transactionTime: z.string(),
  request: z.string(),
  requiresAccessToken: z.boolean(),
  output: z.array(z.object({ type: z.string(), url: z.string(), count: z.number().optional() })),
  error: z.array(z.object({ type: z.string(), url: z.string() })).default([]),
});
export type BulkManifest = z.infer<typeof manifestSchema>;

export interface BulkExportSourceOptions {
  auth?: TokenProvider;
  /** Floor and ceiling of the wait between status polls (Retry-After is honoured inside them). */
  minPollMs?: number;
  maxPollMs?: number;
  /** Give up when the export is not complete after this long. */
  timeoutMs?: number;
  /** Send `_typeFilter=Observation?code=<vBMD summary code>` so the server exports only vBMD Observations,
   * not every lab and vital sign. Optional in Bulk Data 2.0: a server without it may ignore it (the cohort
   * filters again) or refuse the kick-off (then run without it). */
  typeFilter?: boolean;
}

/**
 * `bulk:URL`: a Bulk Data `$export`. URL is a FHIR base (system export), `.../Patient` or `.../Group/ID`
 * (`/$export` is appended), or a full `$export` URL. Kick-off asks `_type` = the three resource types with
 * `Prefer: respond-async`; the status URL (Content-Location) is polled while it answers 202, waiting
 * Retry-After (seconds or an HTTP date) or backing off; the manifest's NDJSON files are then streamed line by
 * line. The token is sent to file URLs only when the manifest says `requiresAccessToken` (signed storage URLs
 * must not receive it). When done, or on failure, the job is deleted on the server (DELETE status URL).
 */
export class BulkExportSource implements ResourceSource {
  readonly label: string;
  private readonly exportUrl: string;
  constructor(url: string, private readonly options: BulkExportSourceOptions = {}) {
    const clean = url.replace(/\/+$/, '');
    this.exportUrl = /\/\$export$/.test(clean) ? clean : `${clean}/$export`;
    this.label = `bulk:${clean}`;
  }

  async kickOff(types: readonly CohortResourceType[], signal?: AbortSignal): Promise<string> {
    const u = new URL(this.exportUrl);
    u.searchParams.set('_type', types.join(','));
    if (this.options.typeFilter && types.includes('Observation')) {
      u.searchParams.set('_typeFilter', `Observation?code=${VBMD_SUMMARY_CODE_TOKEN}`);
    }
    const res = await fhirFetch(
      u.toString(),
      { accept: 'application/fhir+json', headers: { prefer: 'respond-async' }, auth: this.options.auth, signal },
      'the Bulk Data $export kick-off',
      [202],
    );
    const location = res.header('content-location');
    res.discard();
    if (!location) throw new VbmdError('remote', `${origin(this.exportUrl)} accepted the $export but sent no Content-Location to poll.`);
    return new URL(location, this.exportUrl).toString();
  }

  async waitForManifest(statusUrl: string, read: SourceReadOptions = {}): Promise<BulkManifest> {
    const minPoll = this.options.minPollMs ?? 1000;
    const maxPoll = this.options.maxPollMs ?? 120_000;
    const deadline = Date.now() + (this.options.timeoutMs ?? 6 * 3600_000);
    let polls = 0;
    for (;;) {
      read.signal?.throwIfAborted();
      const res = await fhirFetch(statusUrl, { accept: 'application/json', auth: this.options.auth, signal: read.signal, retry429: false }, 'the Bulk Data export status', [200, 202, 429]);
      if (res.status === 200) {
        let json: unknown;
        try {
          json = await res.json();
        } catch {
          throw new VbmdError('remote', `${origin(statusUrl)} sent an export manifest that is not JSON.`);
        }
        const m = manifestSchema.safeParse(json);
        if (!m.success) throw new VbmdError('remote', `${origin(statusUrl)} sent an export manifest without the Bulk Data fields (transactionTime, request, requiresAccessToken, output).`);
        return m.data;
      }
      const progress = res.header('x-progress');
      const retryAfter = retryAfterMs(res.header('retry-after'));
      res.discard();
      if (progress) read.onProgress?.(`export ${progress.slice(0, 60)}`);
      if (Date.now() > deadline) throw new VbmdError('remote', `The Bulk Data export at ${origin(statusUrl)} was not complete in time; try again later or export fewer types.`);
      // No Retry-After: the one backoff, minPoll doubling to maxPoll.
      const wait = retryAfter ?? backoffDelayMs(polls, { baseDelayMs: minPoll, maxDelayMs: maxPoll });
      polls += 1;
      await sleep(Math.min(maxPoll, Math.max(minPoll, wait)), undefined, { signal: read.signal });
    }
  }

  /** Kick-off, wait, then each output file of the asked types as a stream; the job is deleted on the server
   * afterwards, or on failure (best effort, never masks the real outcome). */
  private async *exportedFiles(types: readonly CohortResourceType[], read: SourceReadOptions): AsyncGenerator<{ type: string; index: number; count: number; body: Readable; what: string }> {
    read.onProgress?.('export kick-off');
    const statusUrl = await this.kickOff(types, read.signal);
    try {
      const manifest = await this.waitForManifest(statusUrl, read);
      if (manifest.error.length > 0) {
        log.warn({ errorFiles: manifest.error.length, server: origin(statusUrl) }, 'Bulk Data export reported errors (OperationOutcome files); the cohort counts only what was exported');
      }
      const files = manifest.output.filter((o) => (types as readonly string[]).includes(o.type));
      for (const [i, file] of files.entries()) {
        read.signal?.throwIfAborted();
        read.onProgress?.(`download ${file.type} ${i + 1}/${files.length}`);
        const res = await fhirFetch(
          new URL(file.url, statusUrl).toString(),
          { accept: 'application/fhir+ndjson', auth: manifest.requiresAccessToken ? this.options.auth : undefined, signal: read.signal },
          `the exported ${file.type} file ${i + 1}`,
        );
        yield { type: file.type, index: i, count: files.length, body: res.body, what: `the exported ${file.type} file ${i + 1} from ${origin(statusUrl)}` };
      }
    } finally {
      await fhirFetch(statusUrl, { method: 'DELETE', accept: 'application/fhir+json', auth: this.options.auth }, 'the export delete', [200, 202, 204, 404]).then(
        (r) => r.discard(),
        () => undefined,
      );
    }
  }

  async *batches(types: readonly CohortResourceType[], read: SourceReadOptions = {}): AsyncGenerator<unknown[]> {
    for await (const file of this.exportedFiles(types, read)) yield* ndjsonBatches(file.body, file.what);
  }

  /**
   * Downloads the export's files into `dir` (for the DuckDB engine, which reads files): streamed to disk, one
   * `<n>.<Type>.ndjson` per output file, so memory stays flat whatever their size. Returns the paths.
   */
  async downloadTo(dir: string, types: readonly CohortResourceType[], read: SourceReadOptions = {}): Promise<string[]> {
    await mkdir(dir, { recursive: true });
    const paths: string[] = [];
    for await (const file of this.exportedFiles(types, read)) {
      const path = join(dir, `${String(file.index + 1).padStart(4, '0')}.${file.type}.ndjson`);
      try {
        await pipeline(file.body, createWriteStream(path), { signal: read.signal });
      } catch (e) {
        if (read.signal?.aborted) throw new VbmdError('cancelled', 'Stopped while downloading the Bulk Data export.');
        throw new VbmdError('remote', `Downloading ${file.what} to ${path} failed: ${(e as Error).message}.`);
      }
      paths.push(path);
    }
    return paths;
  }
}

