import { VbmdError } from '../../util/errors.js';
import { BulkExportSource } from './bulk-export.js';
import type { BulkExportSourceOptions } from './bulk-export.js';
import { FhirSearchSource } from './fhir-search.js';
import type { FhirSearchSourceOptions } from './fhir-search.js';
import { NdjsonDirectorySource } from './ndjson-dir.js';
import type { TokenProvider } from '../../net/token-provider.js';
import type { ResourceSource } from './types.js';

export interface SourceFactoryOptions {
  auth?: TokenProvider;
  search?: Omit<FhirSearchSourceOptions, 'auth'>;
  bulk?: Omit<BulkExportSourceOptions, 'auth'>;
}

/** `fhir:URL | bulk:URL | ndjson:DIR` (the --source flag) to a ResourceSource. */
export function parseSourceSpec(spec: string, options: SourceFactoryOptions = {}): ResourceSource {
  const m = /^(fhir|bulk|ndjson):(.+)$/.exec(spec.trim());
  if (!m) throw new VbmdError('bad-input', `--source must be fhir:URL, bulk:URL or ndjson:DIR (got "${spec.slice(0, 80)}").`);
  const [, kind, rest] = m;
  if (kind === 'ndjson') return new NdjsonDirectorySource(rest);
  if (!/^https?:\/\//.test(rest) || !URL.canParse(rest)) {
    throw new VbmdError('bad-input', `--source ${kind}: needs an http(s) URL of a FHIR server (got "${rest.slice(0, 80)}").`);
  }
  if (kind === 'fhir') return new FhirSearchSource(rest, { ...options.search, auth: options.auth });
  return new BulkExportSource(rest, { ...options.bulk, auth: options.auth });
}
