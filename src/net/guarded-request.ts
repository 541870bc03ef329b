import { OutboundClient, OutboundError } from './outbound.js';

/**
 * One GET of a JSON document from a URL a remote party may have chosen (a CDS client's fhirServer), through
 * the outbound layer (outbound.ts) with no retry: which addresses may be dialled (checked on the resolved
 * address at connect time), plain http only to loopback unless allowed, no redirects followed (a 3xx is an
 * error, so a listed server cannot bounce the caller's token elsewhere), and a cap on the bytes read, so the
 * parse that follows is bounded too.
 */
export { OutboundError };
export type { OutboundFailure } from './outbound.js';

export interface GuardedGetOptions {
  headers?: Record<string, string>;
  /** Loopback, private, link-local and other non-public addresses may be dialled (an operator listed this URL). */
  allowNonPublic: boolean;
  /** Plain http to a non-loopback host (otherwise refused: tokens would cross the network in clear). */
  allowInsecureHttp: boolean;
  /** Largest body read; a bigger one is abandoned unread. */
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** GETs `url` and returns its parsed JSON body; every failure is an OutboundError naming the origin. */
export async function getJsonGuarded(url: string, o: GuardedGetOptions): Promise<unknown> {
  const client = new OutboundClient({
    allowNonPublic: o.allowNonPublic,
    allowInsecureHttp: o.allowInsecureHttp,
    retry: { retries: 0 },
    timeoutMs: o.timeoutMs,
    idleTimeoutMs: o.timeoutMs,
    label: 'CDS client FHIR server',
  });
  const res = await client.fetch({ url, headers: o.headers ?? {}, operation: 'GET (CDS data)', ...(o.signal ? { signal: o.signal } : {}) }, o.maxBytes);
  const origin = res.url.origin;
  if (res.status >= 300) {
    if (res.status < 400) throw new OutboundError('redirect', `${origin} answered a redirect (${res.status}); redirects are not followed.`, res.status);
    throw new OutboundError('status', `${origin} answered ${res.status}.`, res.status);
  }
  try {
    return JSON.parse(res.bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw new OutboundError('not-json', `${origin} did not answer JSON.`, res.status, { cause: e });
  }
}
