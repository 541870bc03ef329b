import { randomUUID } from 'node:crypto';
import { SignJWT, base64url, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { createClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import { MemoryReplayCache } from '../../cds-hooks/replay-cache.js';
import { jwtRejectionReason } from '../../src/metrics/jwt-rejection-reason.js';

/**
 * Every way the real CDS client JWT verifier rejects a token lands on its own bounded metric label, so a
 * reworded rejection in cds-hooks/client-auth.ts shows up here instead of silently as `other`.
 */
const ISS = 'https://ehr.metrics.test';
const AUD = 'https://vbmd.metrics.test/cds-services';

describe('JWT rejection reasons as metric labels', () => {
  it('labels each rejection of the real verifier', async () => {
    const kp = await generateKeyPair('ES384', { extractable: true });
    const other = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES384' };
    const verifier = createClientJwtVerifier({ clients: [{ iss: ISS, jwks: { keys: [jwk] } }], replayCache: new MemoryReplayCache(), maxLifetimeS: 600 });
    const now = Math.floor(Date.now() / 1000);
    const make = (o: { iss?: string; aud?: string; iat?: number; exp?: number; jti?: string | null; kid?: string; key?: CryptoKey } = {}) => {
      const claims = o.jti === null ? {} : { jti: o.jti ?? randomUUID() };
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: o.kid ?? 'k1' })
        .setIssuer(o.iss ?? ISS)
        .setAudience(o.aud ?? AUD)
        .setIssuedAt(o.iat ?? now)
        .setExpirationTime(o.exp ?? now + 300)
        .sign(o.key ?? kp.privateKey);
    };
    const reason = async (authorization: string | undefined): Promise<string> => {
      const r = await verifier.verify(authorization, AUD);
      if (r.ok) throw new Error('accepted');
      return jwtRejectionReason(r.reason);
    };
    const replayed = await make({ jti: 'once' });
    expect(await reason(`Bearer ${replayed}`).catch(() => 'first use accepted')).toBe('first use accepted');
    const cases: [string, string | undefined][] = [
      ['missing-token', undefined],
      ['malformed', 'Bearer not.a.jwt'],
      ['algorithm', `Bearer ${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid: 'k1' }))}.${base64url.encode(JSON.stringify({ iss: ISS }))}.`],
      ['untrusted-issuer', `Bearer ${await make({ iss: 'https://stranger.test' })}`],
      ['expired', `Bearer ${await make({ iat: now - 500, exp: now - 200 })}`],
      ['audience', `Bearer ${await make({ aud: 'https://elsewhere.test/cds-services' })}`],
      ['signature', `Bearer ${await make({ key: other.privateKey })}`],
      ['unknown-key', `Bearer ${await make({ kid: 'k-unknown' })}`],
      ['lifetime', `Bearer ${await make({ exp: now + 3000 })}`],
      ['replay', `Bearer ${replayed}`],
    ];
    for (const [label, auth] of cases) expect(await reason(auth), label).toBe(label);
    expect(jwtRejectionReason('something new')).toBe('other');
  });
});
