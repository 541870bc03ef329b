import { KeyObject, createHmac, randomUUID, sign as cryptoSign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, base64url } from 'jose';
import type { JWK } from 'jose';
import { createClientJwtVerifier, requireClientJwt } from '../../cds-hooks/client-auth.js';
import { MemoryReplayCache } from '../../cds-hooks/replay-cache.js';

/**
 * The CDS Hooks 2.0 client JWT checks over real HTTP: only a correctly signed, unexpired, unreplayed token
 * from an allow-listed issuer for exactly this URL passes; every other case is a bare 401.
 */
const ISS = 'https://ehr.example.org';
let server: Server;
let baseUrl: string;
let privateKey: CryptoKey;
let publicJwk: JWK;
const KID = 'ehr-key-1';
const REMOTE_ISS = 'https://other-ehr.example.org';
let remotePrivate: CryptoKey;
let jwksServer: Server;
let jwksFetches = 0;

async function token(opts: {
  aud?: string;
  iss?: string;
  kid?: string;
  expS?: number;
  iatS?: number;
  jti?: string;
  key?: CryptoKey;
} = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: opts.jti ?? randomUUID() })
    .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: opts.kid ?? KID })
    .setIssuer(opts.iss ?? ISS)
    .setAudience(opts.aud ?? `${baseUrl}/cds-services`)
    .setIssuedAt(opts.iatS ?? now)
    .setExpirationTime(opts.expS ?? now + 300)
    .sign(opts.key ?? privateKey);
}

function unsigned(header: object, payload: object, sign?: (input: string) => string): string {
  const h = base64url.encode(JSON.stringify(header));
  const p = base64url.encode(JSON.stringify(payload));
  return `${h}.${p}.${sign ? sign(`${h}.${p}`) : ''}`;
}

async function call(authorization?: string, path = '/cds-services'): Promise<number> {
  const res = await fetch(`${baseUrl}${path}`, { headers: authorization ? { authorization } : {} });
  const body = await res.text();
  if (res.status === 401) expect(body).toBe(''); // bare 401: no hint for an attacker
  return res.status;
}

beforeAll(async () => {
  const kp = await generateKeyPair('ES384', { extractable: true });
  privateKey = kp.privateKey;
  publicJwk = { ...(await exportJWK(kp.publicKey)), kid: KID, alg: 'ES384', use: 'sig' };
  // A second client publishes its keys at a JWKS URL (CDS_CLIENTS {"iss", "jwks_url"}); served by a
  // separate loopback server started first.
  const remote = await generateKeyPair('RS384', { extractable: true });
  remotePrivate = remote.privateKey;
  const jwksApp = express();
  jwksApp.get('/jwks.json', (_req, res) => {
    jwksFetches++;
    void exportJWK(remote.publicKey).then((jwk) => res.json({ keys: [{ ...jwk, kid: 'remote-1', alg: 'RS384', use: 'sig' }] }));
  });
  await new Promise<void>((resolve) => {
    jwksServer = jwksApp.listen(0, '127.0.0.1', () => resolve());
  });
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`;
  const verifier = createClientJwtVerifier({
    clients: [
      { iss: ISS, jwks: { keys: [publicJwk as Record<string, unknown>] } },
      { iss: REMOTE_ISS, jwks_url: jwksUrl },
    ],
    replayCache: new MemoryReplayCache(),
    maxLifetimeS: 3600,
  });
  // Bound first: the audience is the configured base URL, never the Host header, so it must be known.
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const app = express();
  app.use(requireClientJwt(verifier, baseUrl));
  app.get('/cds-services', (_req, res) => res.json({ services: [] }));
  app.get('/cds-services/other', (_req, res) => res.json({}));
  server.on('request', app);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => jwksServer.close(() => r()));
});

describe('CDS client JWT', () => {
  it('accepts a valid ES384 token for this exact URL', async () => {
    expect(await call(`Bearer ${await token()}`)).toBe(200);
  });

  it('accepts an RS384 token from a client whose keys are at a JWKS URL (fetched once, cached)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const remoteToken = () =>
      new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'RS384', typ: 'JWT', kid: 'remote-1' })
        .setIssuer(REMOTE_ISS)
        .setAudience(`${baseUrl}/cds-services`)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(remotePrivate);
    expect(await call(`Bearer ${await remoteToken()}`)).toBe(200);
    expect(await call(`Bearer ${await remoteToken()}`)).toBe(200);
    expect(jwksFetches).toBe(1);
    // The remote client's key does not vouch for the first client's iss.
    const forged = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS384', typ: 'JWT', kid: 'remote-1' })
      .setIssuer(ISS)
      .setAudience(`${baseUrl}/cds-services`)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(remotePrivate);
    expect(await call(`Bearer ${forged}`)).toBe(401);
  });

  it('rejects an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await call(`Bearer ${await token({ iatS: now - 600, expS: now - 120 })}`)).toBe(401);
  });

  it('rejects a token for another URL (aud)', async () => {
    expect(await call(`Bearer ${await token({ aud: `${baseUrl}/cds-services/other` })}`)).toBe(401);
    expect(await call(`Bearer ${await token({ aud: 'https://cds.example.org/cds-services' })}`)).toBe(401);
  });

  it('rejects an unknown issuer, even with a good signature', async () => {
    expect(await call(`Bearer ${await token({ iss: 'https://evil.example.org' })}`)).toBe(401);
  });

  it('rejects an unknown kid', async () => {
    expect(await call(`Bearer ${await token({ kid: 'not-a-key' })}`)).toBe(401);
  });

  it('rejects alg none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = unsigned({ alg: 'none', typ: 'JWT', kid: KID }, { iss: ISS, aud: `${baseUrl}/cds-services`, iat: now, exp: now + 300, jti: randomUUID() });
    expect(await call(`Bearer ${t}`)).toBe(401);
  });

  it('rejects HS256 signed with the public key as the secret (algorithm confusion)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const secret = JSON.stringify(publicJwk);
    const t = unsigned(
      { alg: 'HS256', typ: 'JWT', kid: KID },
      { iss: ISS, aud: `${baseUrl}/cds-services`, iat: now, exp: now + 300, jti: randomUUID() },
      (input) => createHmac('sha256', secret).update(input).digest('base64url'),
    );
    expect(await call(`Bearer ${t}`)).toBe(401);
  });

  it('rejects a replayed jti', async () => {
    const t = await token();
    expect(await call(`Bearer ${t}`)).toBe(200);
    expect(await call(`Bearer ${t}`)).toBe(401);
    // Same jti in a freshly signed token is a replay too.
    const jti = randomUUID();
    expect(await call(`Bearer ${await token({ jti })}`)).toBe(200);
    expect(await call(`Bearer ${await token({ jti })}`)).toBe(401);
  });

  it('rejects a missing or malformed Authorization header', async () => {
    expect(await call(undefined)).toBe(401);
    expect(await call('Basic dXNlcjpwYXNz')).toBe(401);
    expect(await call('Bearer not-a-jwt')).toBe(401);
  });

  // Hand-made tokens, signed with the client's key, pin what the verifier accepts and refuses one check at a
  // time (signature bytes, typ, crit, nbf, each required claim), so a change in how tokens are verified (for
  // speed, say) cannot quietly loosen it.
  describe('signature and claims, token by token', () => {
    const es384 = (input: string): string =>
      cryptoSign('sha384', Buffer.from(input), { key: KeyObject.from(privateKey), dsaEncoding: 'ieee-p1363' }).toString('base64url');
    const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => {
      const now = Math.floor(Date.now() / 1000);
      return { iss: ISS, aud: `${baseUrl}/cds-services`, iat: now, exp: now + 300, jti: randomUUID(), ...over };
    };
    const header = { alg: 'ES384', typ: 'JWT', kid: KID };

    it('accepts a hand-made token signed the same way (the control for the cases below)', async () => {
      expect(await call(`Bearer ${unsigned(header, claims(), es384)}`)).toBe(200);
      // aud may be an array holding this URL (RFC 7519 section 4.1.3), as jose's jwtVerify allowed.
      expect(await call(`Bearer ${unsigned(header, claims({ aud: ['https://other.example.org', `${baseUrl}/cds-services`] }), es384)}`)).toBe(200);
    });

    it('rejects a payload changed after signing, and a garbled or truncated signature', async () => {
      const good = unsigned(header, claims(), es384);
      const [h, , sig] = good.split('.');
      const forgedPayload = base64url.encode(JSON.stringify(claims({ iss: ISS })));
      expect(await call(`Bearer ${h}.${forgedPayload}.${sig}`)).toBe(401);
      const flipped = `${sig!.slice(0, 10)}${sig![10] === 'A' ? 'B' : 'A'}${sig!.slice(11)}`;
      expect(await call(`Bearer ${h}.${good.split('.')[1]}.${flipped}`)).toBe(401);
      expect(await call(`Bearer ${h}.${good.split('.')[1]}.${sig!.slice(0, 64)}`)).toBe(401);
      expect(await call(`Bearer ${h}.${good.split('.')[1]}.`)).toBe(401);
    });

    it('rejects a missing or other typ, and any crit header', async () => {
      expect(await call(`Bearer ${unsigned({ alg: 'ES384', kid: KID }, claims(), es384)}`)).toBe(401);
      expect(await call(`Bearer ${unsigned({ ...header, typ: 'at+jwt' }, claims(), es384)}`)).toBe(401);
      expect(await call(`Bearer ${unsigned({ ...header, crit: ['exp'] }, claims(), es384)}`)).toBe(401);
    });

    it('rejects nbf in the future, a missing exp/iat/jti/aud, and non-numeric times', async () => {
      const now = Math.floor(Date.now() / 1000);
      expect(await call(`Bearer ${unsigned(header, claims({ nbf: now + 600 }), es384)}`)).toBe(401);
      for (const missing of ['exp', 'iat', 'jti', 'aud']) {
        const c = claims();
        delete c[missing];
        expect(await call(`Bearer ${unsigned(header, c, es384)}`), `without ${missing}`).toBe(401);
      }
      expect(await call(`Bearer ${unsigned(header, claims({ exp: String(now + 300) }), es384)}`)).toBe(401);
      expect(await call(`Bearer ${unsigned(header, claims({ iat: now - 4000, exp: now + 60 }), es384)}`)).toBe(401);
    });

    it('rejects ES384 claimed for a kid whose key is RSA (the JWKS key must fit the alg)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = unsigned({ alg: 'ES384', typ: 'JWT', kid: 'remote-1' }, { ...claims(), iss: REMOTE_ISS, iat: now, exp: now + 300 }, es384);
      expect(await call(`Bearer ${t}`)).toBe(401);
    });
  });

  it('rejects a token whose lifetime is longer than allowed, or that is signed by another key with the right kid', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await call(`Bearer ${await token({ iatS: now, expS: now + 7200 })}`)).toBe(401);
    const other = await generateKeyPair('ES384');
    expect(await call(`Bearer ${await token({ key: other.privateKey })}`)).toBe(401);
  });
});
