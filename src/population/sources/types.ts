import type { CohortResourceType } from '../resources.js';

/**
 * One interface over every place resources come from: FHIR search (paged), Bulk Data $export, NDJSON files.
 * A source yields parsed JSON values one at a time (validation happens in resources.ts), so a consumer never
 * holds more than a page or a line.
 */
export interface ResourceSource {
  /** For messages: kind and URL or folder, never a token. */
  readonly label: string;
  /** Resources of the given types, in batches (a search page, an NDJSON chunk). A source may yield other
   * types; the cohort skips them. Batches keep the per-resource cost synchronous (see ndjson-lines.ts). */
  batches(types: readonly CohortResourceType[], options?: SourceReadOptions): AsyncIterable<readonly unknown[]>;
}

/** One resource at a time, for consumers that want that. */
export async function* resourcesOf(
  source: ResourceSource,
  types: readonly CohortResourceType[],
  options?: SourceReadOptions,
): AsyncGenerator<unknown> {
  for await (const batch of source.batches(types, options)) yield* batch;
}

export interface SourceReadOptions {
  signal?: AbortSignal;
  /** Effective-time bounds the source may push to the server as a narrowing hint (the cohort still filters). */
  sinceIso?: string;
  untilIso?: string;
  /** Called with human progress text ("page 12", "downloading Observation 2/5"). */
  onProgress?: (text: string) => void;
}
