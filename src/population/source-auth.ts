import { readFileSync } from 'node:fs';
import type { EnvConfig } from '../config.js';
import { BackendServicesAuth } from '../fhir/auth.js';
import { VbmdError } from '../util/errors.js';
import type { TokenProvider } from '../net/token-provider.js';
import { StaticTokenProvider } from '../net/token-provider.js';

/** Read scopes the cohort needs (SMART v2 `.rs`); Bulk Data export of these types needs the same. */
export const COHORT_SCOPES = 'system/Observation.rs system/MedicationRequest.rs system/MedicationStatement.rs';

function sameServer(sourceUrl: string, fhirBase: string | undefined): boolean {
  if (!fhirBase) return false;
  try {
    const a = new URL(sourceUrl);
    const b = new URL(fhirBase);
    return a.origin === b.origin && a.pathname.replace(/\/+$/, '').startsWith(b.pathname.replace(/\/+$/, ''));
  } catch {
    return false;
  }
}

/**
 * Credentials for a cohort source URL from the settings: COHORT_BEARER_TOKEN when set; otherwise the service's
 * own FHIR credentials (a backend-services provider when given, else FHIR_BEARER_TOKEN), but only when the
 * source is the configured FHIR_BASE_URL server, so the EHR's token is never sent to another host.
 */
export function cohortAuthFromConfig(
  cfg: Pick<EnvConfig, 'COHORT_BEARER_TOKEN' | 'FHIR_BEARER_TOKEN' | 'FHIR_BASE_URL'>,
  sourceUrl: string,
  backendServices?: TokenProvider,
): TokenProvider | undefined {
  if (cfg.COHORT_BEARER_TOKEN) return new StaticTokenProvider(cfg.COHORT_BEARER_TOKEN);
  if (!sameServer(sourceUrl, cfg.FHIR_BASE_URL)) return undefined;
  if (backendServices) return backendServices;
  if (cfg.FHIR_BEARER_TOKEN) return new StaticTokenProvider(cfg.FHIR_BEARER_TOKEN);
  return undefined;
}

/** SMART Backend Services for the cohort (read scopes) from FHIR_CLIENT_ID / FHIR_PRIVATE_KEY_FILE, when set. */
export function cohortBackendServicesFromConfig(
  cfg: Pick<EnvConfig, 'FHIR_CLIENT_ID' | 'FHIR_PRIVATE_KEY_FILE' | 'FHIR_KEY_ALG' | 'FHIR_KEY_ID' | 'FHIR_TOKEN_URL' | 'FHIR_BASE_URL'>,
): TokenProvider | undefined {
  if (!cfg.FHIR_CLIENT_ID || !cfg.FHIR_PRIVATE_KEY_FILE) return undefined;
  let key: string;
  try {
    key = readFileSync(cfg.FHIR_PRIVATE_KEY_FILE, 'utf8');
  } catch {
    throw new VbmdError('config', `Cannot read FHIR_PRIVATE_KEY_FILE (${cfg.FHIR_PRIVATE_KEY_FILE}); it must be a PKCS#8 PEM or a private JWK.`);
  }
  return new BackendServicesAuth({
    clientId: cfg.FHIR_CLIENT_ID,
    privateKey: key,
    alg: cfg.FHIR_KEY_ALG,
    kid: cfg.FHIR_KEY_ID,
    scope: COHORT_SCOPES,
    tokenUrl: cfg.FHIR_TOKEN_URL,
    fhirBaseUrl: cfg.FHIR_BASE_URL,
  });
}
