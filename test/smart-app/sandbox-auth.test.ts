import { createHash, randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxSmart, SMART_APP_CLIENT_ID, SMART_EHR_LAUNCH_SCOPE, SMART_STANDALONE_LAUNCH_SCOPE } from '../../src/sandbox/smart-auth/index.js';
import type { SandboxSmart } from '../../src/sandbox/smart-auth/index.js';

/** The sandbox SMART authorization server over real HTTP, driven like a browser would (redirects followed by
 * hand, cookies kept), with a stand-in resource server that only asks verifyAccess. */

let server: Server;
let base = '';
let smart: SandboxSmart;

beforeAll(async () => {
  const app = express();
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  smart = await createSandboxSmart({
    issuerUrl: `${base}/auth`,
    fhirBaseUrl: `${base}/fhir`,
    accessTokenTtlS: 4,
    readResource: async (type, id) => (type === 'Observation' ? { resourceType: 'Observation', id, subject: { reference: id === 'mine' ? 'Patient/p1' : 'Patient/p2' } } : undefined),
  });
  app.use(smart.router);
  app.use('/fhir', express.json(), (req, res) => {
    smart.verifyAccess(req).then((d) => res.status(d.ok ? 200 : d.status).json({ ok: d.ok }), (e: unknown) => res.status(500).json({ e: String(e) }));
  });
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

class Browser {
  private cookies = new Map<string, string>();
  async get(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      this.cookies.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return res;
  }
  /** Follows redirects until one lands on `stopPrefix` (the app's redirect URI) or a page. */
  async follow(url: string, stopPrefix: string, init?: RequestInit): Promise<{ url: string; res: Response }> {
    let res = await this.get(url, init);
    let current = url;
    for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i++) {
      current = new URL(res.headers.get('location') as string, current).href;
      if (current.startsWith(stopPrefix)) return { url: current, res };
      res = await this.get(current);
    }
    return { url: current, res };
  }
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(params: Record<string, string>): string {
  const u = new URL(`${base}/auth/authorize`);
  const all: Record<string, string> = {
    response_type: 'code',
    client_id: SMART_APP_CLIENT_ID,
    redirect_uri: `${base}/smart/index.html`,
    state: randomBytes(16).toString('hex'),
    aud: `${base}/fhir`,
    ...params,
  };
  for (const [k, v] of Object.entries(all)) u.searchParams.set(k, v);
  return u.href;
}

async function token(code: string, verifier: string, origin?: string): Promise<Response> {
  return fetch(`${base}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin ? { origin } : {}) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${base}/smart/index.html`, code_verifier: verifier, client_id: SMART_APP_CLIENT_ID }),
  });
}

describe('sandbox SMART authorization server', () => {
  it('publishes .well-known/smart-configuration under the FHIR base with S256 only', async () => {
    const res = await fetch(`${base}/fhir/.well-known/smart-configuration`);
    expect(res.status).toBe(200);
    const conf = (await res.json()) as Record<string, unknown>;
    expect(conf.code_challenge_methods_supported).toEqual(['S256']);
    expect(conf.authorization_endpoint).toBe(`${base}/auth/authorize`);
    expect(conf.token_endpoint).toBe(`${base}/auth/token`);
    expect(conf.capabilities).toEqual(expect.arrayContaining(['launch-ehr', 'launch-standalone', 'context-ehr-patient', 'permission-v2']));
  });

  it('completes an EHR launch with PKCE S256 and returns the launch context with the token', async () => {
    const { launch } = smart.createLaunch({ patient: 'p1', fhirContext: [{ reference: 'ImagingStudy/s9' }], needPatientBanner: true, appContext: '{"observation":"Observation/o1"}' });
    const { verifier, challenge } = pkce();
    const b = new Browser();
    const { url } = await b.follow(authorizeUrl({ scope: SMART_EHR_LAUNCH_SCOPE, launch, code_challenge: challenge, code_challenge_method: 'S256' }), `${base}/smart/`);
    const code = new URL(url).searchParams.get('code');
    expect(code, url).toBeTruthy();
    const res = await token(code as string, verifier);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.patient).toBe('p1');
    expect(body.fhirContext).toEqual([{ reference: 'ImagingStudy/s9' }]);
    expect(body.need_patient_banner).toBe(true);
    expect(body.appContext).toBe('{"observation":"Observation/o1"}');
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(4);
    expect(String(body.scope).split(' ')).toEqual(expect.arrayContaining(['launch', 'patient/Observation.rs', 'openid', 'fhirUser']));
    expect(typeof body.id_token).toBe('string');
    const claims = JSON.parse(Buffer.from(String(body.id_token).split('.')[1], 'base64url').toString()) as Record<string, unknown>;
    expect(claims.fhirUser).toBe(`${base}/fhir/Practitioner/sandbox-clinician`);

    const at = String(body.access_token);
    const call = (path: string, method = 'GET', tok: string | null = at) =>
      fetch(`${base}/fhir${path}`, { method, headers: tok ? { authorization: `Bearer ${tok}` } : {} }).then((r) => r.status);
    expect(await call('/Observation?patient=p1&code=x')).toBe(200);
    expect(await call('/Observation?patient=Patient/p1')).toBe(200);
    expect(await call('/Observation?subject=Patient/p2')).toBe(403);
    expect(await call('/Observation')).toBe(403);
    expect(await call('/Patient/p1')).toBe(200);
    expect(await call('/Patient/p2')).toBe(403);
    expect(await call('/Observation/mine')).toBe(200);
    expect(await call('/Observation/theirs')).toBe(403);
    expect(await call('/Condition?patient=p1')).toBe(403);
    expect(await call('/Observation', 'POST')).toBe(403);
    expect(await call('/Observation?patient=p1', 'GET', null)).toBe(401);
    expect(await call('/Observation?patient=p1', 'GET', 'forged-token')).toBe(401);
    // online_access: a refresh token; a refresh (public client: client_id, no secret) gives a new access token
    // with the same launch patient, and the used refresh token is rotated out.
    expect(String(body.scope).split(' ')).toContain('online_access');
    expect(typeof body.refresh_token).toBe('string');
    const refresh = (rt: string) =>
      fetch(`${base}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, client_id: SMART_APP_CLIENT_ID }),
      });
    const renewed = await refresh(String(body.refresh_token));
    expect(renewed.status).toBe(200);
    const next = (await renewed.json()) as Record<string, unknown>;
    expect(next.patient).toBe('p1');
    expect(await call('/Observation?patient=p1&code=x', 'GET', String(next.access_token))).toBe(200);
    expect(await call('/Patient/p2', 'GET', String(next.access_token))).toBe(403);
    expect((await refresh(String(body.refresh_token))).status).toBe(400);
    // The code is single-use.
    expect((await token(code as string, verifier)).status).toBe(400);
    // Short-lived: after expires_in the same token is refused.
    await new Promise((r) => setTimeout(r, 4200));
    expect(await call('/Observation?patient=p1&code=x')).toBe(401);
  });

  it('answers token requests from the app origin only (CORS for registered origins)', async () => {
    const codeFor = async () => {
      const { launch } = smart.createLaunch({ patient: 'p1', needPatientBanner: false });
      const p = pkce();
      const { url } = await new Browser().follow(authorizeUrl({ scope: SMART_EHR_LAUNCH_SCOPE, launch, code_challenge: p.challenge, code_challenge_method: 'S256' }), `${base}/smart/`);
      return { code: new URL(url).searchParams.get('code') as string, verifier: p.verifier };
    };
    const a = await codeFor();
    const evil = await token(a.code, a.verifier, 'http://evil.example');
    expect(evil.status).not.toBe(200);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const b = await codeFor();
    const own = await token(b.code, b.verifier, base);
    expect(own.status).toBe(200);
    expect(own.headers.get('access-control-allow-origin')).toBe(base);
  });

  it('refuses a token request whose code_verifier does not match', async () => {
    const { launch } = smart.createLaunch({ patient: 'p1', needPatientBanner: false });
    const { challenge } = pkce();
    const b = new Browser();
    const { url } = await b.follow(authorizeUrl({ scope: SMART_EHR_LAUNCH_SCOPE, launch, code_challenge: challenge, code_challenge_method: 'S256' }), `${base}/smart/`);
    const code = new URL(url).searchParams.get('code') as string;
    const res = await token(code, pkce().verifier);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it.each([
    ['missing PKCE', {}],
    ['plain PKCE', { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }],
  ])('refuses an authorization request with %s', async (_name, extra) => {
    const { launch } = smart.createLaunch({ patient: 'p1', needPatientBanner: false });
    const b = new Browser();
    const { url } = await b.follow(authorizeUrl({ scope: SMART_EHR_LAUNCH_SCOPE, launch, ...extra }), `${base}/smart/`);
    const q = new URL(url).searchParams;
    expect(q.get('code')).toBeNull();
    expect(q.get('error')).toBe('invalid_request');
  });

  it('refuses a wrong aud and an unknown launch', async () => {
    const { challenge } = pkce();
    const b = new Browser();
    const wrongAud = await b.follow(
      authorizeUrl({ scope: SMART_EHR_LAUNCH_SCOPE, launch: smart.createLaunch({ patient: 'p1', needPatientBanner: false }).launch, aud: 'http://evil.example/fhir', code_challenge: challenge, code_challenge_method: 'S256' }),
      `${base}/smart/`,
    );
    expect(new URL(wrongAud.url).searchParams.get('error')).toBe('invalid_request');
    const unknown = await b.follow(authorizeUrl({ scope: SMART_EHR_LAUNCH_SCOPE, launch: 'nope', code_challenge: challenge, code_challenge_method: 'S256' }), `${base}/smart/`);
    const q = new URL(unknown.url).searchParams;
    expect(q.get('error')).toBe('invalid_request');
    expect(q.get('error_description')).toMatch(/launch value is unknown/);
  });

  it('completes a standalone launch through the patient picker', async () => {
    const { verifier, challenge } = pkce();
    const b = new Browser();
    const first = await b.follow(authorizeUrl({ scope: SMART_STANDALONE_LAUNCH_SCOPE, code_challenge: challenge, code_challenge_method: 'S256' }), `${base}/smart/`);
    expect(first.res.status).toBe(200);
    const html = await first.res.text();
    const action = /action="([^"]+)"/.exec(html)?.[1] as string;
    expect(action).toMatch(/\/auth\/interaction\/.+\/patient$/);
    const posted = await b.get(new URL(action, base).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'patient=p7',
    });
    const { url } = await b.follow(new URL(posted.headers.get('location') as string, base).href, `${base}/smart/`);
    const code = new URL(url).searchParams.get('code') as string;
    expect(code).toBeTruthy();
    const body = (await (await token(code, verifier)).json()) as Record<string, unknown>;
    expect(body.patient).toBe('p7');
    expect(body.need_patient_banner).toBe(true);
    expect(body.fhirContext).toBeUndefined();
  });

  it('the sandbox EHR page frames the app with iss and launch', async () => {
    const res = await fetch(`${base}/sandbox/launch?patient=p1&imagingStudy=s9`);
    const html = await res.text();
    const src = /<iframe[^>]*src="([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&') as string;
    const u = new URL(src);
    expect(u.pathname).toBe('/smart/launch.html');
    expect(u.searchParams.get('iss')).toBe(`${base}/fhir`);
    expect(u.searchParams.get('launch')).toBeTruthy();
    const redirect = await fetch(`${base}/sandbox/launch?patient=p1&open=redirect`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect((await fetch(`${base}/sandbox/launch?patient=<x>`)).status).toBe(400);
    const index = await (await fetch(`${base}/sandbox/launch`)).text();
    expect(index).toContain('Open a chart');
  });
});
