import { readFileSync } from 'node:fs';
import type { EnvConfig } from '../config.js';
import { config } from '../config.js';
import { VbmdError } from '../util/errors.js';
import type { TokenProvider } from '../net/token-provider.js';
import { StaticTokenProvider } from '../net/token-provider.js';
import { BackendServicesAuth } from './auth.js';
import { FhirClient } from './client.js';

export interface FhirClientSettings {
  baseUrl: string;
  /** Static bearer token; wins over Backend Services when both are given. */
  token?: string;
  clientId?: string;
  /** Path of a PKCS#8 PEM or private JWK file. */
  privateKeyFile?: string;
  keyAlg?: 'RS384' | 'ES384';
  keyId?: string;
  tokenUrl?: string;
  scope?: string;
  writeMode?: 'transaction' | 'sequential';
  /** Plain http to a non-loopback server or token endpoint (ALLOW_INSECURE_HTTP). */
  allowInsecureHttp?: boolean;
}

/** The credentials for a FHIR server: none, a static bearer, or SMART Backend Services. */
export function tokenProviderFor(s: FhirClientSettings): TokenProvider | undefined {
  if (s.token) return new StaticTokenProvider(s.token);
  if (!s.clientId) return undefined;
  if (!s.privateKeyFile) {
    throw new VbmdError('config', 'FHIR_CLIENT_ID is set but FHIR_PRIVATE_KEY_FILE is not: SMART Backend Services needs the private key.');
  }
  let key: string;
  try {
    key = readFileSync(s.privateKeyFile, 'utf8');
  } catch (e) {
    throw new VbmdError('config', `Cannot read the FHIR client private key file ${s.privateKeyFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}.`);
  }
  return new BackendServicesAuth({
    clientId: s.clientId,
    privateKey: key,
    alg: s.keyAlg ?? 'ES384',
    ...(s.keyId ? { kid: s.keyId } : {}),
    scope: s.scope ?? 'system/Observation.cru system/RiskAssessment.cru system/Device.cru system/Provenance.c',
    ...(s.tokenUrl ? { tokenUrl: s.tokenUrl } : {}),
    fhirBaseUrl: s.baseUrl,
    ...(s.allowInsecureHttp ? { allowInsecureHttp: true } : {}),
  });
}

export function createFhirClient(s: FhirClientSettings): FhirClient {
  const auth = tokenProviderFor(s);
  return new FhirClient({
    baseUrl: s.baseUrl,
    ...(auth ? { auth } : {}),
    ...(s.writeMode ? { writeMode: s.writeMode } : {}),
    ...(s.allowInsecureHttp ? { allowInsecureHttp: true } : {}),
  });
}

/** The FHIR client the service writes with, from FHIR_* settings; `baseUrl` overrides FHIR_BASE_URL (the
 * sandbox passes its in-process server). */
export function fhirClientFromConfig(cfg: EnvConfig = config(), baseUrl?: string): FhirClient {
  const base = baseUrl ?? cfg.FHIR_BASE_URL;
  if (!base) throw new VbmdError('config', 'FHIR_BASE_URL is not set: vbmd does not know which FHIR server to write to.');
  return createFhirClient({
    baseUrl: base,
    ...(cfg.FHIR_BEARER_TOKEN ? { token: cfg.FHIR_BEARER_TOKEN } : {}),
    ...(cfg.FHIR_CLIENT_ID ? { clientId: cfg.FHIR_CLIENT_ID } : {}),
    ...(cfg.FHIR_PRIVATE_KEY_FILE ? { privateKeyFile: cfg.FHIR_PRIVATE_KEY_FILE } : {}),
    keyAlg: cfg.FHIR_KEY_ALG,
    ...(cfg.FHIR_KEY_ID ? { keyId: cfg.FHIR_KEY_ID } : {}),
    ...(cfg.FHIR_TOKEN_URL ? { tokenUrl: cfg.FHIR_TOKEN_URL } : {}),
    scope: cfg.FHIR_SCOPES,
    writeMode: cfg.FHIR_WRITE_MODE,
    allowInsecureHttp: cfg.ALLOW_INSECURE_HTTP,
  });
}
