import type { OperationOutcome } from 'fhir/r4.js';
import { VbmdError } from '../util/errors.js';

/**
 * A FHIR (or its token endpoint's) refusal, as one sentence a person can act on: which server, which
 * request, what status, and what the server's OperationOutcome said. Like fhirclient's HttpError.
 */
export class FhirError extends VbmdError {
  constructor(
    readonly server: string,
    readonly status: number | undefined,
    readonly request: string,
    readonly diagnostics: string | undefined,
    message: string,
    readonly outcome?: OperationOutcome,
    options?: { cause?: unknown },
  ) {
    super(status === 401 || status === 403 ? 'unauthorized' : status === 404 ? 'not-found' : 'remote', message, {
      server,
      status,
      request,
      ...(diagnostics ? { diagnostics } : {}),
    }, options);
  }
}

/** The text of an OperationOutcome's issues (diagnostics, details.text, code), at most 3. */
export function outcomeText(oo: unknown): string | undefined {
  if (!oo || typeof oo !== 'object' || (oo as { resourceType?: unknown }).resourceType !== 'OperationOutcome') return undefined;
  const issues = ((oo as OperationOutcome).issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  const all = issues.length ? issues : ((oo as OperationOutcome).issue ?? []);
  const texts = all
    .slice(0, 3)
    .map((i) => [i.diagnostics, i.details?.text, i.expression?.join(',')].filter(Boolean).join(' at ') || i.code)
    .filter((t) => t && t.length > 0);
  return texts.length ? texts.join('; ') : undefined;
}

export function hintForStatus(status: number | undefined): string {
  switch (status) {
    case undefined:
      return 'check that the server is reachable from here';
    case 400:
    case 422:
      return 'the server rejected the content; see its message';
    case 401:
      return 'check the FHIR credentials (token, client id and key)';
    case 403:
      return 'the credentials lack a scope for this (e.g. system/Observation.c)';
    case 404:
      return 'check the FHIR base URL';
    case 409:
      return 'a concurrent change conflicted; retry later';
    case 412:
      return 'several resources already match a conditional request (duplicates on the server); remove the duplicates';
    case 429:
      return 'the server is rate-limiting; retry later';
    default:
      return status >= 500 ? 'the server failed; retry later or ask its administrators' : 'see the server message';
  }
}
