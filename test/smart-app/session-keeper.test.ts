import { afterEach, describe, expect, it, vi } from 'vitest';
import { keepSessionAlive } from '../../smart-app/src/session.js';
import type { Client } from '../../smart-app/src/session.js';

/** The session keeper alone, on fake timers with a stand-in for fhirclient's Client (its state and refresh). */
function client(o: { expiresInS: number; refreshToken?: string; refresh?: () => Promise<unknown> }): Client {
  const state = { expiresAt: Date.now() / 1000 + o.expiresInS, tokenResponse: { expires_in: o.expiresInS, ...(o.refreshToken ? { refresh_token: o.refreshToken } : {}) } };
  return { state, refresh: o.refresh ?? (async () => state) } as unknown as Client;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('keepSessionAlive', () => {
  it('without a refresh token, ends the session when the access token runs out (not before)', async () => {
    vi.useFakeTimers();
    const ended = vi.fn();
    keepSessionAlive(client({ expiresInS: 60 }), ended);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(ended).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1_500);
    expect(ended).toHaveBeenCalledWith('expired');
  });

  it('with one, refreshes a fifth of the lifetime before expiry, again after each renewal, and ends when refused', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const c = client({ expiresInS: 60, refreshToken: 'r' });
    (c as unknown as { refresh: () => Promise<unknown> }).refresh = async () => {
      calls++;
      if (calls === 3) throw Object.assign(new Error('invalid_grant'), { status: 400 });
      c.state.expiresAt = Date.now() / 1000 + 60;
      return c.state;
    };
    const ended = vi.fn();
    const keeper = keepSessionAlive(c, ended);
    await vi.advanceTimersByTimeAsync(47_000);
    expect(calls).toBe(0);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(48_000);
    expect(calls).toBe(2);
    expect(keeper.refreshes()).toBe(2);
    expect(ended).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(48_000);
    expect(ended).toHaveBeenCalledWith('refresh-refused');
  });

  it('retries a refresh that failed on the network while the token is still valid', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const c = client({ expiresInS: 60, refreshToken: 'r' });
    (c as unknown as { refresh: () => Promise<unknown> }).refresh = async () => {
      calls++;
      if (calls === 1) throw new TypeError('Failed to fetch');
      c.state.expiresAt = Date.now() / 1000 + 60;
      return c.state;
    };
    const ended = vi.fn();
    keepSessionAlive(c, ended);
    await vi.advanceTimersByTimeAsync(48_500);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(5_100);
    expect(calls).toBe(2);
    expect(ended).not.toHaveBeenCalled();
  });
});
