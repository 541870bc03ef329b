import { z } from 'zod';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../fhir/codes.js';
import { VbmdError } from '../../util/errors.js';
import type { CohortResourceType } from '../resources.js';
import { fhirFetch } from './http.js';
import type { TokenProvider } from '../../net/token-provider.js';
import type { ResourceSource, SourceReadOptions } from './types.js';

const searchBundle = z.object({
  resourceType: z.literal('Bundle'),
  entry: z.array(z.object({ resource: z.unknown().optional(), search: z.object({ mode: z.string().optional() }).optional() })).optional(),
  link: z.array(z.object({ relation: z.string(), url: z.string() })).optional(),
});

export interface FhirSearchSourceOptions {
  auth?: TokenProvider;
  /** Page size asked for (`_count`); servers may return fewer. */
  pageSize?: number;
  /** Stop after this many pages per type (a guard against a server whose next links never end). */
  maxPages?: number;
}

/**
 * `fhir:URL`: type searches with paging, following each Bundle's `next` link until there is none. Only token
 * (code) and date parameters are sent, which every R4 server supports; the value itself is never searched
 * server-side (`value-quantity` is missing on many EHR servers and on the test server). The date window is
 * sent as a hint and enforced again on the client.
 */
export class FhirSearchSource implements ResourceSource {
  readonly label: string;
  private readonly base: string;
  constructor(baseUrl: string, private readonly options: FhirSearchSourceOptions = {}) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.label = `fhir:${this.base}`;
  }

  searchUrl(type: CohortResourceType, read: SourceReadOptions): string {
    const p = new URLSearchParams();
    if (type === 'Observation') {
      p.set('code', VBMD_SUMMARY_CODE_TOKEN);
      if (read.sinceIso) p.append('date', `ge${read.sinceIso}`);
      if (read.untilIso) p.append('date', `lt${read.untilIso}`);
    }
    p.set('_count', String(this.options.pageSize ?? 500));
    return `${this.base}/${type}?${p.toString()}`;
  }

  async *batches(types: readonly CohortResourceType[], read: SourceReadOptions = {}): AsyncGenerator<unknown[]> {
    const baseOrigin = new URL(this.base).origin;
    const maxPages = this.options.maxPages ?? 1_000_000;
    for (const type of types) {
      let url: string | undefined = this.searchUrl(type, read);
      const seen = new Set<string>();
      let page = 0;
      while (url) {
        read.signal?.throwIfAborted();
        if (seen.has(url) || ++page > maxPages) {
          throw new VbmdError('remote', `${this.base} keeps returning the same ${type} search page; its paging is broken, try a Bulk Data export (bulk:URL).`);
        }
        // Remember only the last few URLs: a loop shows up at once, and memory stays flat on long searches.
        if (seen.size > 4) seen.clear();
        seen.add(url);
        read.onProgress?.(`${type} page ${page}`);
        const res = await fhirFetch(url, { accept: 'application/fhir+json', auth: this.options.auth, signal: read.signal }, `the ${type} search page ${page}`);
        let json: unknown;
        try {
          json = await res.json();
        } catch {
          throw new VbmdError('remote', `${this.base} returned a ${type} search page that is not JSON.`);
        }
        const bundle = searchBundle.safeParse(json);
        if (!bundle.success) throw new VbmdError('remote', `${this.base} returned a ${type} search page that is not a FHIR Bundle.`);
        const batch: unknown[] = [];
        for (const e of bundle.data.entry ?? []) {
          // `include` and `outcome` entries are not results.
          if (e.search?.mode && e.search.mode !== 'match') continue;
          if (e.resource !== undefined) batch.push(e.resource);
        }
        if (batch.length > 0) yield batch;
        const next = bundle.data.link?.find((l) => l.relation === 'next')?.url;
        if (next) {
          const resolved = new URL(next, `${this.base}/`);
          // The bearer token goes only to the server it was issued for.
          if (resolved.origin !== baseOrigin) {
            throw new VbmdError('remote', `${this.base} sent a next-page link to another server (${resolved.origin}); refusing to send credentials there.`);
          }
          url = resolved.toString();
        } else {
          url = undefined;
        }
      }
    }
  }
}
