import { randomUUID } from 'node:crypto';
import type { CryptoKey, JWK, KeyObject } from 'jose';
import { importJWK, importPKCS8, SignJWT } from 'jose';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { OutboundClient, OutboundError } from '../net/outbound.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import type { TokenProvider } from '../net/token-provider.js';
import { VbmdError } from '../util/errors.js';
import { FhirError, hintForStatus } from './fhir-error.js';

export interface BackendServicesOptions {
  clientId: string;
  /** PKCS#8 PEM text, a private JWK, or an imported key. */
  privateKey: string | JWK | CryptoKey | KeyObject;
  /** SMART Backend Services clients must support both (SMART App Launch 2.2, client-confidential-asymmetric). */
  alg: 'RS384' | 'ES384';
  /** `kid` of the public key in the client's registered JWKS. */
  kid?: string;
  /** Optional `jku` header: the client's JWKS URL, when registered that way. */
  jku?: string;
  /** e.g. `system/Observation.cu system/RiskAssessment.cu ...` */
  scope: string;
  /** Token endpoint; discovered from `${fhirBaseUrl}/.well-known/smart-configuration` when absent. */
  tokenUrl?: string;
  fhirBaseUrl?: string;
  /** Plain http to a non-loopback token endpoint (ALLOW_INSECURE_HTTP); refused otherwise. */
  allowInsecureHttp?: boolean;
  /** undici's MockAgent in unit tests. */
  dispatcher?: Dispatcher;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  now?: () => number;
}

const tokenResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string().refine((t) => t.toLowerCase() === 'bearer', 'token_type must be Bearer'),
  expires_in: z.coerce.number().positive().optional(),
  scope: z.string().optional(),
});

const smartConfiguration = z.object({ token_endpoint: z.string().url() });

/** SMART recommends access tokens of at most 300 s; assume that when the server does not say. */
const DEFAULT_TOKEN_LIFETIME_S = 300;
/** Assertion lifetime: SMART requires exp no more than five minutes ahead; we use less to absorb clock skew. */
const ASSERTION_LIFETIME_S = 240;

/**
 * SMART Backend Services (SMART App Launch 2.2 "backend-services"): `client_credentials` grant authenticated
 * by a `private_key_jwt` client assertion (RFC 7523) signed RS384 or ES384, with iss = sub = client_id,
 * aud = the token endpoint URL, exp <= 5 min ahead and a fresh jti. The token is cached until shortly before
 * it expires; concurrent callers share one token request.
 */
export class BackendServicesAuth implements TokenProvider {
  private cached?: { token: string; refreshAt: number };
  private inflight?: Promise<string>;
  private key?: Promise<CryptoKey | KeyObject | Uint8Array>;
  private tokenUrl?: string;
  private readonly net: OutboundClient;
  private readonly now: () => number;
  /** Number of token requests made (for tests and metrics). */
  requests = 0;

  constructor(private readonly o: BackendServicesOptions) {
    if (!o.tokenUrl && !o.fhirBaseUrl) {
      throw new VbmdError('config', 'SMART Backend Services needs the token URL or the FHIR base URL to discover it.');
    }
    this.now = o.now ?? Date.now;
    this.net = new OutboundClient({
      label: 'token endpoint',
      timeoutMs: o.timeoutMs ?? 15_000,
      ...(o.retry ? { retry: o.retry } : {}),
      ...(o.allowInsecureHttp ? { allowInsecureHttp: true } : {}),
      ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
    });
    this.tokenUrl = o.tokenUrl;
  }

  async token(signal?: AbortSignal): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAt) return this.cached.token;
    this.inflight ??= this.requestToken(signal).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  /** The signed client assertion (exported for tests of the token endpoint). */
  async clientAssertion(audience: string): Promise<string> {
    const key = await this.signingKey();
    const nowS = Math.floor(this.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: this.o.alg, typ: 'JWT', ...(this.o.kid ? { kid: this.o.kid } : {}), ...(this.o.jku ? { jku: this.o.jku } : {}) })
      .setIssuer(this.o.clientId)
      .setSubject(this.o.clientId)
      .setAudience(audience)
      .setIssuedAt(nowS)
      .setExpirationTime(nowS + ASSERTION_LIFETIME_S)
      .setJti(randomUUID())
      .sign(key);
  }

  private signingKey(): Promise<CryptoKey | KeyObject | Uint8Array> {
    this.key ??= (async () => {
      const k = this.o.privateKey;
      try {
        if (typeof k === 'string') {
          const text = k.trim();
          if (text.startsWith('{')) return await importJWK(JSON.parse(text) as JWK, this.o.alg);
          return await importPKCS8(text, this.o.alg);
        }
        if (typeof k === 'object' && k !== null && 'kty' in k) return await importJWK(k as JWK, this.o.alg);
        return k as CryptoKey | KeyObject;
      } catch (e) {
        throw new VbmdError(
          'config',
          `The FHIR client private key could not be read as a ${this.o.alg} key (PKCS#8 PEM or private JWK expected).`,
          {},
          { cause: e },
        );
      }
    })();
    return this.key;
  }

  private async discoverTokenUrl(signal?: AbortSignal): Promise<string> {
    if (this.tokenUrl) return this.tokenUrl;
    const url = `${(this.o.fhirBaseUrl ?? '').replace(/\/+$/, '')}/.well-known/smart-configuration`;
    const res = await this.send({ url, method: 'GET', headers: { accept: 'application/json' }, operation: 'GET /.well-known/smart-configuration', ...(signal ? { signal } : {}) });
    const parsed = smartConfiguration.safeParse(jsonOrUndefined(res.bytes));
    if (res.status !== 200 || !parsed.success) {
      throw new FhirError(new URL(url).origin, res.status, 'GET /.well-known/smart-configuration', undefined,
        `The FHIR server ${new URL(url).origin} has no usable SMART configuration (HTTP ${res.status}, token_endpoint missing); set FHIR_TOKEN_URL.`);
    }
    this.tokenUrl = parsed.data.token_endpoint;
    return this.tokenUrl;
  }

  private async requestToken(signal?: AbortSignal): Promise<string> {
    const tokenUrl = await this.discoverTokenUrl(signal);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: this.o.scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await this.clientAssertion(tokenUrl),
    });
    const requestedAt = this.now();
    this.requests++;
    // A token request is safe to repeat, but each attempt needs a fresh jti: every attempt re-signs.
    const res = await this.send({
      url: tokenUrl,
      method: 'POST',
      retryable: true,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      bodyForAttempt: async (attempt) => {
        if (attempt > 0) form.set('client_assertion', await this.clientAssertion(tokenUrl));
        return form.toString();
      },
      operation: 'POST token (client_credentials)',
      ...(signal ? { signal } : {}),
    });
    const body = jsonOrUndefined(res.bytes);
    const origin = new URL(tokenUrl).origin;
    if (res.status < 200 || res.status >= 300) {
      const err = body as { error?: string; error_description?: string } | undefined;
      const diag = [err?.error, err?.error_description].filter(Boolean).join(': ') || undefined;
      throw new FhirError(origin, res.status, 'POST token (client_credentials)', diag,
        `The token endpoint ${tokenUrl} refused the client credentials (HTTP ${res.status}${diag ? `, ${diag}` : ''}); check FHIR_CLIENT_ID, the key and its registration, and the scopes.`);
    }
    const parsed = tokenResponse.safeParse(body);
    if (!parsed.success) {
      throw new FhirError(origin, res.status, 'POST token (client_credentials)', undefined,
        `The token endpoint ${tokenUrl} answered without a usable bearer access_token.`);
    }
    const lifetimeMs = (parsed.data.expires_in ?? DEFAULT_TOKEN_LIFETIME_S) * 1000;
    // Refresh 30 s before expiry, or at 80% of a short lifetime, counting from when we asked.
    const marginMs = Math.min(30_000, lifetimeMs * 0.2);
    this.cached = { token: parsed.data.access_token, refreshAt: requestedAt + lifetimeMs - marginMs };
    return parsed.data.access_token;
  }

  private async send(req: Parameters<OutboundClient['fetch']>[0]): Promise<Awaited<ReturnType<OutboundClient['fetch']>>> {
    const url = new URL(req.url);
    try {
      // The token endpoint is not the FHIR server: no bearer token goes there (auth: null).
      return await this.net.fetch({ ...req, auth: null }, 1024 * 1024);
    } catch (e) {
      if (e instanceof OutboundError && e.reason !== 'cancelled') {
        throw new FhirError(url.origin, undefined, `${req.method ?? 'GET'} ${url.pathname}`, undefined,
          `No answer from ${url.origin} (${e.reason === 'timeout' ? 'timed out' : e.message.replace(/\.$/, '')}) while getting a FHIR access token; ${hintForStatus(undefined)}.`, undefined, { cause: e });
      }
      throw e;
    }
  }
}

function jsonOrUndefined(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
