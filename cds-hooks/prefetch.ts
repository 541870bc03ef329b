import { isLoopbackUrl } from '../src/config.js';
import { log } from '../src/util/log.js';
import { bundleResources } from './vbmd-results.js';
import type { FhirAuthorization } from './hook-request.js';

/**
 * Data a service needs, from the request's prefetch or, when the client left a key out (or answered it with
 * an OperationOutcome), from the client's FHIR server with its transient `fhirAuthorization` token. The token
 * is used for this one call and never logged or stored (CDS Hooks 2.0, "FHIR Resource Access").
 */
export interface HookDataRequest {
  fhirServer?: string;
  fhirAuthorization?: FhirAuthorization;
  context: Record<string, unknown>;
  prefetch?: Record<string, unknown>;
}

/** Fills `{{context.x}}` tokens with first-level primitive context values; undefined when one is missing. */
export function fillTemplate(template: string, context: Record<string, unknown>): string | undefined {
  let missing = false;
  const out = template.replace(/\{\{\s*context\.([A-Za-z0-9_]+)\s*\}\}/g, (_m, key: string) => {
    const v = context[key];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return encodeURIComponent(String(v));
    missing = true;
    return '';
  });
  return missing ? undefined : out;
}

export interface FetchDataOptions {
  fetchImpl?: typeof fetch;
  timeoutMs?: number;
  /** Send the client's token over plain http to a non-loopback fhirServer (never in production: CDS Hooks
   * requires TLS, and the token would cross the network in clear). */
  allowInsecureHttp?: boolean;
}

/**
 * The resources of one search-type prefetch key. Undefined = the service could not obtain them (no prefetch
 * and no FHIR access, or the FHIR call failed); [] = the record has none.
 */
export async function searchResources(
  req: HookDataRequest,
  key: string,
  template: string,
  options: FetchDataOptions = {},
): Promise<unknown[] | undefined> {
  const pre = req.prefetch?.[key];
  if (pre !== undefined && pre !== null && (pre as { resourceType?: string }).resourceType === 'Bundle') return bundleResources(pre);
  if (pre === null) return [];
  if (!req.fhirAuthorization || !req.fhirServer) return undefined;
  const query = fillTemplate(template, req.context);
  if (!query) return undefined;
  const url = `${req.fhirServer.replace(/\/+$/, '')}/${query}`;
  if (url.startsWith('http://') && !options.allowInsecureHttp && !isLoopbackUrl(url)) {
    log.warn({ key, server: new URL(url).origin }, 'not sending the client FHIR token over plain http');
    return undefined;
  }
  const fetchImpl = options.fetchImpl ?? fetch;
  try {
    const res = await fetchImpl(url, {
      headers: { accept: 'application/fhir+json', authorization: `Bearer ${req.fhirAuthorization.access_token}` },
      signal: AbortSignal.timeout(options.timeoutMs ?? 3000),
    });
    if (!res.ok) {
      log.warn({ key, status: res.status, server: new URL(url).origin }, 'CDS data fetch from the client FHIR server failed');
      return undefined;
    }
    return bundleResources(await res.json());
  } catch (e) {
    log.warn({ key, server: new URL(url).origin, err: (e as Error).message }, 'CDS data fetch from the client FHIR server failed');
    return undefined;
  }
}
