import type FHIR from 'fhirclient';

/**
 * The app's EHR session. With a refresh token (the `online_access` scope) the access token is renewed
 * silently shortly before it runs out, for as long as the authorization server allows; without one, or when
 * a refresh is refused, the session has ended: the caller keeps what is on screen and offers a relaunch.
 */
export type Client = Awaited<ReturnType<typeof FHIR.oauth2.ready>>;

/** Standalone launch against the same FHIR server: the way back in when the EHR's launch cannot be replayed. */
export function relaunchHref(client: Client): string {
  const url = new URL('./launch.html', window.location.href);
  url.searchParams.set('iss', client.state.serverUrl);
  return url.href;
}

export function hasRefreshToken(client: Client): boolean {
  return typeof (client.state.tokenResponse as { refresh_token?: unknown } | undefined)?.refresh_token === 'string';
}

/** Renew this long before expiry: a fifth of the token's lifetime, 1 to 30 s. */
function leadMs(client: Client): number {
  const lifetimeS = Number((client.state.tokenResponse as { expires_in?: unknown } | undefined)?.expires_in ?? 300);
  return Math.min(30_000, Math.max(1_000, lifetimeS * 200));
}

export interface SessionKeeper {
  stop(): void;
  /** Successful silent refreshes so far. */
  refreshes(): number;
}

export function keepSessionAlive(client: Client, onEnded: (why: 'expired' | 'refresh-refused') => void): SessionKeeper {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let count = 0;
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    const expiresMs = Number(client.state.expiresAt ?? 0) * 1000;
    // No expiry given: nothing to renew ahead of time; a 401 on the next read ends the session instead.
    if (!expiresMs) return;
    const refresh = hasRefreshToken(client);
    const at = expiresMs - (refresh ? leadMs(client) : 0);
    timer = setTimeout(() => void tick(refresh, expiresMs), Math.max(0, at - Date.now()));
  };
  const tick = async (refresh: boolean, expiresMs: number): Promise<void> => {
    if (stopped) return;
    if (!refresh) return onEnded('expired');
    try {
      await client.refresh();
      count++;
      schedule();
    } catch (e) {
      const status = (e as { status?: number }).status;
      // A network blip before expiry is retried; a refusal (invalid_grant: the session is over) is final.
      if (status === undefined && Date.now() + 5_000 < expiresMs) timer = setTimeout(() => void tick(true, expiresMs), 5_000);
      else onEnded('refresh-refused');
    }
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
    refreshes: () => count,
  };
}
