import { getJsonGuarded, OutboundError } from '../src/net/guarded-request.js';
import { log } from '../src/util/log.js';
import { bundleResources } from './vbmd-results.js';
import { fhirBundle } from './fhir-shapes.js';
import { describeZodError } from './hook-request.js';
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
  timeoutMs?: number;
  /** Send the client's token over plain http to a non-loopback fhirServer (never in production: CDS Hooks
   * requires TLS, and the token would cross the network in clear). */
  allowInsecureHttp?: boolean;
  /**
   * The FHIR base URLs the calling CDS client may name (its `fhir_servers` in CDS_CLIENTS). Listed: the
   * fhirServer must be one of them, and may then be a private or loopback address. Not listed: any https
   * server on a public address, never a private, loopback or link-local one (a cloud metadata endpoint).
   */
  allowedFhirServers?: readonly string[];
  /** Largest FHIR reply read (default 2 MiB: twenty vBMD Observations are tens of KB). */
  maxBytes?: number;
}

export const DEFAULT_FHIR_REPLY_MAX_BYTES = 2 * 1024 * 1024;

/** A FHIR base as compared with the allowlist: origin (scheme, lower-case host, port) + path, no trailing slash. */
export function normalizeFhirBase(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * The resources of one search-type prefetch key. Undefined = the service could not obtain them (no prefetch
 * and no FHIR access, a fhirServer this client may not name, or the FHIR call failed); [] = the record has none.
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
  const base = normalizeFhirBase(req.fhirServer);
  const server = new URL(base).origin;
  const listed = options.allowedFhirServers?.map(normalizeFhirBase);
  if (listed && !listed.includes(base)) {
    log.warn({ key, server }, 'fhirServer is not among this CDS client\'s fhir_servers; not sending its token there');
    return undefined;
  }
  try {
    const body = await getJsonGuarded(`${base}/${query}`, {
      headers: { accept: 'application/fhir+json', authorization: `Bearer ${req.fhirAuthorization.access_token}` },
      allowNonPublic: listed !== undefined,
      allowInsecureHttp: options.allowInsecureHttp === true,
      maxBytes: options.maxBytes ?? DEFAULT_FHIR_REPLY_MAX_BYTES,
      timeoutMs: options.timeoutMs ?? 3000,
    });
    if ((body as { resourceType?: unknown } | null)?.resourceType === 'Bundle') {
      const shaped = fhirBundle.safeParse(body);
      if (!shaped.success) {
        log.warn({ key, server, problem: describeZodError(shaped.error) }, 'the client FHIR server answered a badly shaped Bundle; not used');
        return undefined;
      }
    }
    return bundleResources(body);
  } catch (e) {
    const reason = e instanceof OutboundError ? e.reason : 'error';
    log.warn({ key, server, reason, err: (e as Error).message }, 'CDS data fetch from the client FHIR server failed');
    return undefined;
  }
}
