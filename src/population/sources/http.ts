import { VbmdError } from '../../util/errors.js';
import type { AuthHeaderProvider } from './types.js';

/** Plain-language text of an OperationOutcome body, if the server sent one (never the whole body: it may
 * echo request data). */
export async function outcomeText(res: Response): Promise<string> {
  try {
    const text = await res.text();
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

/** GET/DELETE with the source's credentials; network failures and non-2xx answers become VbmdErrors that
 * name the server and status. `what` says what was asked for ("the Observation search page"). */
export async function fhirFetch(
  url: string,
  init: { method?: 'GET' | 'DELETE'; accept: string; auth?: AuthHeaderProvider; headers?: Record<string, string>; signal?: AbortSignal },
  what: string,
  okStatuses: readonly number[] = [200],
): Promise<Response> {
  const attempt = async (): Promise<Response> => {
    const headers: Record<string, string> = { accept: init.accept, ...init.headers };
    const authorization = init.auth ? await init.auth() : undefined;
    if (authorization) headers.authorization = authorization;
    try {
      // Node's fetch drops Authorization on a cross-origin redirect (Fetch standard), so following is safe.
      return await fetch(url, { method: init.method ?? 'GET', headers, signal: init.signal, redirect: 'follow' });
    } catch (e) {
      if (init.signal?.aborted) throw new VbmdError('cancelled', `Stopped while fetching ${what} from ${origin(url)}.`);
      throw new VbmdError('remote', `Cannot reach ${origin(url)} for ${what} (${(e as Error).message}); check the URL and that the server is up.`);
    }
  };
  let res = await attempt();
  if (res.status === 401 && init.auth?.invalidate) {
    // An expired Backend Services token: one retry with a fresh one.
    await res.body?.cancel();
    init.auth.invalidate();
    res = await attempt();
  }
  if (okStatuses.includes(res.status)) return res;
  const detail = await outcomeText(res);
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
