import type { Readable } from 'node:stream';
import { discard, OutboundClient, OutboundError } from '../../net/outbound.js';
import type { OutboundResponse } from '../../net/outbound.js';
import { RETRYABLE_STATUSES } from '../../net/retry.js';
import type { TokenProvider } from '../../net/token-provider.js';
import { VbmdError } from '../../util/errors.js';

/** Plain-language text of an OperationOutcome body, if the server sent one (never the whole body: it may
 * echo request data). */
export function outcomeText(text: string): string {
  try {
    const body = JSON.parse(text) as { resourceType?: string; issue?: Array<{ diagnostics?: string; details?: { text?: string } }> };
    if (body.resourceType === 'OperationOutcome') {
      const msg = (body.issue ?? []).map((i) => i.details?.text ?? i.diagnostics).filter(Boolean).join('; ');
      if (msg) return `: ${msg.slice(0, 300)}`;
    }
  } catch {
    // Not JSON: say nothing more than the status.
  }
  return '';
}

/** A cohort source's answer: status, headers, and the body as a stream (or parsed whole). */
export interface SourceResponse {
  status: number;
  header(name: string): string | undefined;
  body: Readable;
  /** The whole body parsed as JSON (bounded); rejects when it is not JSON. */
  json(): Promise<unknown>;
  /** Drop the body unread. */
  discard(): void;
}

/** Search pages and manifests are JSON of at most a few MB; bigger is a broken server. */
const MAX_JSON_BYTES = 256 * 1024 * 1024;

// Bulk Data output files may live behind a redirect to object storage: followed, and the token goes only
// to the server it was issued for (outbound.ts sends credentials to the original origin only).
const net = new OutboundClient({ label: 'cohort source', maxRedirects: 5, timeoutMs: 60_000, idleTimeoutMs: 120_000 });

/** GET/DELETE with the source's credentials through the outbound layer (retries, timeouts, TLS and
 * redirect policy); network failures and answers outside `okStatuses` become VbmdErrors that name the
 * server and status. `what` says what was asked for ("the Observation search page"). `retry429: false`
 * leaves a 429 to the caller (the Bulk Data status poll waits its Retry-After itself). */
export async function fhirFetch(
  url: string,
  init: { method?: 'GET' | 'DELETE'; accept: string; auth?: TokenProvider; headers?: Record<string, string>; signal?: AbortSignal; retry429?: boolean },
  what: string,
  okStatuses: readonly number[] = [200],
): Promise<SourceResponse> {
  let res: OutboundResponse;
  try {
    res = await net.exchange({
      method: init.method ?? 'GET',
      url,
      headers: { accept: init.accept, ...init.headers },
      auth: init.auth ?? null,
      operation: `${init.method ?? 'GET'} ${what}`,
      ...(init.retry429 === false ? { retryStatuses: new Set([...RETRYABLE_STATUSES].filter((s) => s !== 429)) } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    }, async (r) => r);
  } catch (e) {
    if (e instanceof OutboundError && e.reason === 'cancelled') throw new VbmdError('cancelled', `Stopped while fetching ${what} from ${origin(url)}.`);
    const why = e instanceof OutboundError ? e.message.replace(/\.$/, '') : (e as Error).message;
    throw new VbmdError('remote', `Cannot reach ${origin(url)} for ${what} (${why}); check the URL and that the server is up.`, {}, { cause: e });
  }
  const response: SourceResponse = {
    status: res.status,
    header: res.header,
    // Not a `streamed` request: the body is undici's, a Node Readable.
    body: res.body as Readable,
    json: async () => JSON.parse((await net.readAll(res, MAX_JSON_BYTES)).toString('utf8')) as unknown,
    discard: () => discard(res.body),
  };
  if (okStatuses.includes(res.status)) return response;
  const detail = outcomeText((await net.readAll(res, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8'));
  if (res.status === 401 || res.status === 403) {
    throw new VbmdError('unauthorized', `${origin(url)} refused ${what} with HTTP ${res.status}${detail}; check the FHIR credentials and scopes (system/Observation.rs, system/MedicationRequest.rs, system/MedicationStatement.rs).`, { status: res.status });
  }
  throw new VbmdError('remote', `${origin(url)} answered ${what} with HTTP ${res.status}${detail}.`, { status: res.status });
}

/** scheme://host:port only: URLs in messages never carry query strings (they may hold patient data) or
 * signed-URL credentials. */
export function origin(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'the server';
  }
}
