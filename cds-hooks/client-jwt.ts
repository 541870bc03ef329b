import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { JWK } from 'jose';
import { z } from 'zod';
import { VbmdError } from '../src/util/errors.js';

/**
 * The client side of CDS Hooks authentication: what an EHR does on every call (a fresh ES384 JWT with
 * iss, aud = the exact URL, iat, exp, jti and the key's kid). Used by `vbmd hook`, the sandbox, tests and
 * the benchmark; the sandbox's own client key pair is made once and kept in the data dir (mode 0600).
 */
export interface CdsClientKey {
  iss: string;
  kid: string;
  alg: 'ES384' | 'RS384';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function signClientJwt(key: CdsClientKey, audience: string, lifetimeS = 300): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid })
    .setIssuer(key.iss)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetimeS)
    .sign(key.privateKey);
}

export async function generateClientKey(iss: string): Promise<CdsClientKey & { privateJwk: JWK }> {
  const kp = await generateKeyPair('ES384', { extractable: true });
  const kid = randomBytes(8).toString('hex');
  const publicJwk = { ...(await exportJWK(kp.publicKey)), kid, alg: 'ES384', use: 'sig' };
  const privateJwk = { ...(await exportJWK(kp.privateKey)), kid, alg: 'ES384' };
  return { iss, kid, alg: 'ES384', privateKey: kp.privateKey, publicJwk, privateJwk };
}

const storedKey = z.object({
  iss: z.string().min(1),
  privateJwk: z.looseObject({ kty: z.string(), kid: z.string(), d: z.string(), alg: z.enum(['ES384', 'RS384']) }),
  publicJwk: z.looseObject({ kty: z.string(), kid: z.string() }),
});

/** Reads a client key file (`{iss, privateJwk, publicJwk}`, as the sandbox writes it). */
export async function readClientKeyFile(path: string): Promise<CdsClientKey> {
  let parsed: z.infer<typeof storedKey>;
  try {
    parsed = storedKey.parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (e) {
    throw new VbmdError('config', `Cannot use the CDS client key file ${path}: ${e instanceof SyntaxError ? 'not JSON' : ((e as NodeJS.ErrnoException).code ?? 'expected {iss, privateJwk, publicJwk}')}.`);
  }
  const privateKey = (await importJWK(parsed.privateJwk as JWK, parsed.privateJwk.alg)) as CryptoKey;
  return { iss: parsed.iss, kid: parsed.privateJwk.kid, alg: parsed.privateJwk.alg, privateKey, publicJwk: parsed.publicJwk as JWK };
}

/** The sandbox EHR's key pair: made on first start, reused afterwards so `vbmd hook` keeps working. */
export async function loadOrCreateClientKeyFile(path: string, iss: string): Promise<CdsClientKey> {
  if (existsSync(path)) return readClientKeyFile(path);
  const k = await generateClientKey(iss);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify({ iss, privateJwk: k.privateJwk, publicJwk: k.publicJwk }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return k;
}
