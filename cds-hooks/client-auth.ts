import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWTVerifyGetKey, JSONWebKeySet } from 'jose';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { CdsClientConfig } from '../src/config.js';
import { log } from '../src/util/log.js';
import type { ReplayCache } from './replay-cache.js';

/**
 * CDS Hooks 2.0 client authentication (STANDARDS.md section 1, "Client authentication"; the checks follow
 * cds-hooks/docs best-practices.md in order): every request, discovery included, carries
 * `Authorization: Bearer <JWT>` signed by a trusted client. We accept only the asymmetric algorithms the
 * spec recommends (ES384, RS384): `none` and HMAC are rejected before any key is looked up, so a token
 * "signed" with a client's public key as an HMAC secret can never verify. Any failure is a bare 401; the
 * reason goes to the debug log, never the token.
 */
export const ALLOWED_CLIENT_JWT_ALGS = ['ES384', 'RS384'] as const;

export interface ClientJwtVerifierOptions {
  clients: readonly CdsClientConfig[];
  replayCache: ReplayCache;
  /** Longest accepted lifetime (exp - iat) and how far back iat may lie, seconds (spec: <= 1 h). */
  maxLifetimeS: number;
  /** Allowed clock skew between client and service, seconds. */
  clockToleranceS?: number;
}

export interface VerifiedClient {
  iss: string;
  jti: string;
  tenant?: string;
}

export type ClientJwtResult = { ok: true; client: VerifiedClient } | { ok: false; reason: string };

export interface ClientJwtVerifier {
  /** `audience` is the exact URL the client called (scheme, host, path; no query). */
  verify(authorization: string | undefined, audience: string): Promise<ClientJwtResult>;
}

export function createClientJwtVerifier(options: ClientJwtVerifierOptions): ClientJwtVerifier {
  const keySets = new Map<string, JWTVerifyGetKey>();
  for (const c of options.clients) {
    const keys: JWTVerifyGetKey =
      'jwks_url' in c
        ? createRemoteJWKSet(new URL(c.jwks_url), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000, timeoutDuration: 5_000 })
        : createLocalJWKSet(c.jwks as unknown as JSONWebKeySet);
    keySets.set(c.iss, keys);
  }
  const tolerance = options.clockToleranceS ?? 30;

  async function verify(authorization: string | undefined, audience: string): Promise<ClientJwtResult> {
    const m = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)\s*$/i.exec(authorization ?? '');
    if (!m) return { ok: false, reason: 'missing or malformed Authorization header' };
    const token = m[1]!;
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverifiedIss: unknown;
    try {
      header = decodeProtectedHeader(token);
      unverifiedIss = decodeJwt(token).iss;
    } catch {
      return { ok: false, reason: 'token is not a decodable JWT' };
    }
    if (!header.alg || !(ALLOWED_CLIENT_JWT_ALGS as readonly string[]).includes(header.alg)) {
      return { ok: false, reason: `alg ${String(header.alg)} is not allowed (ES384/RS384 only)` };
    }
    if (typeof header.kid !== 'string' || header.kid.length === 0) return { ok: false, reason: 'JWT header has no kid' };
    if (typeof unverifiedIss !== 'string') return { ok: false, reason: 'JWT has no iss' };
    const keys = keySets.get(unverifiedIss);
    if (!keys) return { ok: false, reason: `iss ${unverifiedIss} is not a trusted CDS client` };
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: [...ALLOWED_CLIENT_JWT_ALGS],
        issuer: unverifiedIss,
        audience,
        typ: 'JWT',
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
        maxTokenAge: options.maxLifetimeS,
        clockTolerance: tolerance,
      }));
    } catch (e) {
      return { ok: false, reason: `JWT rejected: ${(e as { code?: string }).code ?? 'error'} ${(e as Error).message}` };
    }
    const { exp, iat, jti } = payload as { exp: number; iat: number; jti: unknown };
    if (typeof jti !== 'string' || jti.length === 0) return { ok: false, reason: 'jti is not a non-empty string' };
    const nowS = Date.now() / 1000;
    if (iat > nowS + tolerance) return { ok: false, reason: 'iat is in the future' };
    if (exp - iat > options.maxLifetimeS) return { ok: false, reason: `lifetime exp-iat exceeds ${options.maxLifetimeS} s` };
    // Remember the jti until the token could no longer be accepted anyway (exp + skew).
    const firstUse = await options.replayCache.remember(`${unverifiedIss}\u0000${jti}`, Math.ceil(exp + tolerance - nowS));
    if (!firstUse) return { ok: false, reason: 'jti was already used (replay)' };
    const tenant = typeof payload.tenant === 'string' ? payload.tenant : undefined;
    return { ok: true, client: { iss: unverifiedIss, jti, ...(tenant ? { tenant } : {}) } };
  }

  return { verify };
}

/**
 * The exact URL a request called, as the client saw it: the configured public base + the path. Never built
 * from the Host header: a caller chooses that header, so a token minted for another host would pass.
 */
export function calledUrl(req: Request, publicBaseUrl: string): string {
  const path = req.originalUrl.split('?')[0] ?? '/';
  return `${publicBaseUrl.replace(/\/+$/, '')}${path}`;
}

/** Express middleware: 401 with no body on any failure; the verified client on `res.locals.cdsClient`. */
export function requireClientJwt(verifier: ClientJwtVerifier, publicBaseUrl: string): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    verifier.verify(req.get('authorization'), calledUrl(req, publicBaseUrl)).then(
      (result) => {
        if (result.ok) {
          res.locals.cdsClient = result.client;
          next();
          return;
        }
        log.debug({ path: req.path, reason: result.reason }, 'CDS client JWT rejected');
        res.status(401).end();
      },
      (e: unknown) => {
        // The token could not be checked (the jti replay store, Redis, did not answer in time): not the
        // client's fault, and never let through; answer at once so the EHR is not kept waiting.
        log.warn({ path: req.path, err: (e as Error)?.message }, 'CDS client JWT could not be checked');
        if (res.headersSent) return next(e);
        res.status(503).setHeader('Retry-After', '5').json({ error: 'unavailable', message: 'The service cannot check client tokens right now; try again shortly.' });
      },
    );
  };
}
