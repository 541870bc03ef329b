import type { CohortResourceType } from '../resources.js';

/**
 * One interface over every place resources come from: FHIR search (paged), Bulk Data $export, NDJSON files.
 * A source yields parsed JSON values one at a time (validation happens in resources.ts), so a consumer never
 * holds more than a page or a line.
 */
export interface ResourceSource {
  /** For messages: kind and URL or folder, never a token. */
  readonly label: string;
  /** Resources of the given types (a source may yield others; the cohort skips them). */
  resources(types: readonly CohortResourceType[], options?: SourceReadOptions): AsyncIterable<unknown>;
}

export interface SourceReadOptions {
  signal?: AbortSignal;
  /** Effective-time bounds the source may push to the server as a narrowing hint (the cohort still filters). */
  sinceIso?: string;
  untilIso?: string;
  /** Called with human progress text ("page 12", "downloading Observation 2/5"). */
  onProgress?: (text: string) => void;
}

/** How a source authenticates to a FHIR server: a static bearer token or a token provider (SMART Backend
 * Services). Called before each request so expiring tokens are refreshed by the provider. */
export type AuthHeaderProvider = () => Promise<string | undefined>;

export function staticBearer(token: string | undefined): AuthHeaderProvider {
  return async () => (token ? `Bearer ${token}` : undefined);
}
