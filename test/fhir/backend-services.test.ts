import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createLocalJWKSet, exportJWK, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendServicesAuth } from '../../src/fhir/auth.js';
import { FhirClient } from '../../src/fhir/client.js';
import { FhirError } from '../../src/fhir/fhir-error.js';
import { createFhirApp } from '../../src/sandbox/fhir-server/app.js';
import { writeAnalysis } from '../../src/fhir/write-analysis.js';
import { forStudy, lumbarOsteoporosisReport } from './reports.js';

/**
 * SMART Backend Services end to end over loopback HTTP: a test authorization server that checks the client
 * assertion the way SMART App Launch 2.2 requires (signature by the client's registered JWKS, iss = sub =
 * client_id, aud = token URL, exp at most 5 minutes ahead, jti never reused), a FHIR server that only accepts
 * its tokens, and the real FhirClient writing through both.
 */
interface Registered {
  clientId: string;
  jwks: { keys: JWK[] };
}

let server: Server;
let base: string;
let tokenUrl: string;
const clients = new Map<string, Registered>();
const usedJti = new Set<string>();
const issued = new Set<string>();
const tokenLog: { ok: boolean; error?: string }[] = [];
let tokenLifetimeS = 300;

async function registerClient(alg: 'ES384' | 'RS384', clientId: string): Promise<{ pem: string; jwk: JWK; kid: string }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${clientId}-key`;
  const pub = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  clients.set(clientId, { clientId, jwks: { keys: [pub] } });
  return { pem: await exportPKCS8(privateKey), jwk: { ...(await exportJWK(privateKey)), kid }, kid };
}

beforeAll(async () => {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.get('/fhir/.well-known/smart-configuration', (_req, res) => {
    res.json({ token_endpoint: tokenUrl, grant_types_supported: ['client_credentials'], capabilities: ['client-confidential-asymmetric'], code_challenge_methods_supported: ['S256'] });
  });
  app.post('/auth/token', async (req, res) => {
    const fail = (status: number, error: string, description: string): void => {
      tokenLog.push({ ok: false, error: description });
      res.status(status).json({ error, error_description: description });
    };
    const body = req.body as Record<string, string>;
    if (body.grant_type !== 'client_credentials') return fail(400, 'unsupported_grant_type', 'grant_type');
    if (body.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return fail(400, 'invalid_request', 'assertion type');
    const assertion = body.client_assertion ?? '';
    const claimedIss = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString() || '{}').iss as string | undefined;
    const client = claimedIss ? clients.get(claimedIss) : undefined;
    if (!client) return fail(401, 'invalid_client', 'unknown client');
    try {
      const { payload, protectedHeader } = await jwtVerify(assertion, createLocalJWKSet(client.jwks), {
        algorithms: ['ES384', 'RS384'],
        audience: tokenUrl,
        issuer: client.clientId,
        subject: client.clientId,
        requiredClaims: ['exp', 'jti'],
      });
      const now = Math.floor(Date.now() / 1000);
      if ((payload.exp ?? 0) - now > 300) return fail(401, 'invalid_client', 'exp more than 5 minutes ahead');
      if (protectedHeader.typ !== 'JWT') return fail(401, 'invalid_client', 'typ');
      if (usedJti.has(payload.jti as string)) return fail(401, 'invalid_client', 'jti replayed');
      usedJti.add(payload.jti as string);
    } catch (e) {
      return fail(401, 'invalid_client', (e as Error).message);
    }
    const token = `tok-${issued.size + 1}-${Math.random().toString(36).slice(2)}`;
    issued.add(token);
    tokenLog.push({ ok: true });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ access_token: token, token_type: 'bearer', expires_in: tokenLifetimeS, scope: body.scope });
  });
  app.use(
    '/fhir',
    createFhirApp({
      verifyAccess: async (req) => {
        const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
        if (!m) return { ok: false, status: 401 };
        return issued.has(m[1]) ? { ok: true } : { ok: false, status: 401 };
      },
    }),
  );
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tokenUrl = `${base}/auth/token`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

const scope = 'system/Observation.cu system/RiskAssessment.cu system/Device.cu system/Provenance.c';

describe('SMART Backend Services', () => {
  it.each(['ES384', 'RS384'] as const)('%s: discovers the token endpoint, gets a token with a valid assertion, caches it', async (alg) => {
    const clientId = `vbmd-${alg}`;
    const { pem, kid } = await registerClient(alg, clientId);
    tokenLifetimeS = 3;
    const auth = new BackendServicesAuth({ clientId, privateKey: pem, alg, kid, scope, fhirBaseUrl: `${base}/fhir` });
    const client = new FhirClient({ baseUrl: `${base}/fhir`, auth });
    const before = tokenLog.length;
    await writeAnalysis(client, forStudy(lumbarOsteoporosisReport(), `bs-${alg}`), { patient: `Patient/bs-${alg}` });
    await client.search('Observation', { patient: `Patient/bs-${alg}` });
    expect(auth.requests).toBe(1);
    expect(tokenLog.slice(before)).toEqual([{ ok: true }]);
    // Shortly before expiry (a 3 s token is refreshed at 80% of its life, 2.4 s) a new one is fetched with a new assertion.
    await new Promise((r) => setTimeout(r, 2500));
    await client.search('Observation', { patient: `Patient/bs-${alg}` });
    expect(auth.requests).toBe(2);
    expect(tokenLog.slice(before)).toEqual([{ ok: true }, { ok: true }]);
    tokenLifetimeS = 300;
  });

  it('accepts a private JWK too, and shares one token request between concurrent callers', async () => {
    const { jwk, kid } = await registerClient('ES384', 'vbmd-jwk');
    const auth = new BackendServicesAuth({ clientId: 'vbmd-jwk', privateKey: jwk, alg: 'ES384', kid, scope, tokenUrl });
    const tokens = await Promise.all([auth.token(), auth.token(), auth.token()]);
    expect(new Set(tokens).size).toBe(1);
    expect(auth.requests).toBe(1);
  });

  it('the token endpoint rejects a replayed jti, a wrong aud and an unregistered key', async () => {
    const { pem, kid } = await registerClient('ES384', 'vbmd-replay');
    const auth = new BackendServicesAuth({ clientId: 'vbmd-replay', privateKey: pem, alg: 'ES384', kid, scope, tokenUrl });
    const post = (assertion: string): Promise<Response> =>
      fetch(tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
      });
    const a = await auth.clientAssertion(tokenUrl);
    expect((await post(a)).status).toBe(200);
    const replay = await post(a);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error_description: string }).error_description).toBe('jti replayed');
    const wrongAud = await post(await auth.clientAssertion(`${base}/other`));
    expect(wrongAud.status).toBe(401);
    // A key the server does not know for this client: a clear FhirError naming the token endpoint.
    await registerClient('ES384', 'vbmd-rotated');
    const { pem: otherPem } = await registerClient('ES384', 'vbmd-stranger');
    const impostor = new BackendServicesAuth({ clientId: 'vbmd-rotated', privateKey: otherPem, alg: 'ES384', kid: 'vbmd-rotated-key', scope, tokenUrl });
    const err = await impostor.token().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as FhirError).code).toBe('unauthorized');
    expect((err as FhirError).message).toContain(tokenUrl);
    expect((err as FhirError).message).toContain('invalid_client');
  });

  it('a token the FHIR server no longer accepts is replaced once, transparently', async () => {
    const { pem, kid } = await registerClient('RS384', 'vbmd-revoked');
    const auth = new BackendServicesAuth({ clientId: 'vbmd-revoked', privateKey: pem, alg: 'RS384', kid, scope, tokenUrl });
    const client = new FhirClient({ baseUrl: `${base}/fhir`, auth });
    const t1 = await auth.token();
    issued.delete(t1); // revoked server-side
    const page = await client.search('Patient', {});
    expect(Array.isArray(page)).toBe(true);
    expect(auth.requests).toBe(2);
  });

  it('never puts the token in an error message', async () => {
    const { pem, kid } = await registerClient('ES384', 'vbmd-secret');
    const auth = new BackendServicesAuth({ clientId: 'vbmd-secret', privateKey: pem, alg: 'ES384', kid, scope, tokenUrl });
    const client = new FhirClient({ baseUrl: `${base}/fhir`, auth, retry: { retries: 0 } });
    const token = await auth.token();
    const err = await client.read('Observation', 'missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as FhirError).status).toBe(404);
    expect(JSON.stringify({ m: (err as Error).message, d: (err as FhirError).details })).not.toContain(token);
  });
});
