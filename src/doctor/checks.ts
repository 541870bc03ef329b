import { join, resolve } from 'node:path';
import { loadEnvConfig, serviceMode } from '../config.js';
import type { EnvConfig } from '../config.js';
import { userMessage } from '../util/errors.js';

/**
 * `vbmd doctor`'s checks of a deployment, each answering in plain words: the settings parse and are
 * complete for the mode; the FHIR server, the PACS and Redis answer (with the configured credentials);
 * Redis persists; the model file is there and matches its checksum; the embedded store's schema is one this
 * vbmd can use; the data and audit folders are writable; this machine's clock agrees with the FHIR
 * server's and Redis's (tokens carry exp/iat: a CDS client JWT whose iat is more than 30 s ahead is refused,
 * cds-hooks/client-auth.ts; SMART Backend Services assertions are checked by the EHR likewise). Read-only:
 * nothing is migrated, queued or written (missing data and audit folders are created, as a start would).
 */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';
export interface CheckResult {
  check: string;
  status: CheckStatus;
  message: string;
}

/** Clock skew beyond this is a warning; beyond MAX_SKEW_S (the CDS JWT clock tolerance) a failure. */
const WARN_SKEW_S = 5;
const MAX_SKEW_S = 30;

export function skewResult(what: string, skewS: number): CheckResult {
  const abs = Math.abs(skewS);
  const side = skewS > 0 ? 'ahead of' : 'behind';
  const status: CheckStatus = abs > MAX_SKEW_S ? 'fail' : abs > WARN_SKEW_S ? 'warn' : 'ok';
  const message =
    status === 'ok'
      ? `This machine's clock agrees with ${what} (within ${Math.max(1, Math.round(abs))} s).`
      : `This machine's clock is ${Math.round(abs)} s ${side} ${what}: tokens (CDS client JWTs, SMART Backend Services) will be refused; synchronise the clocks (NTP).`;
  return { check: `clock vs ${what}`, status, message };
}

function settings(env: NodeJS.ProcessEnv): { cfg?: EnvConfig; results: CheckResult[] } {
  let cfg: EnvConfig;
  try {
    cfg = loadEnvConfig(env);
  } catch (e) {
    return { results: [{ check: 'settings', status: 'fail', message: userMessage(e) }] };
  }
  try {
    const mode = serviceMode(cfg);
    return { cfg, results: [{ check: 'settings', status: 'ok', message: `Settings are complete for ${mode} mode${cfg.REDIS_URL ? ' with Redis' : ' with the embedded store'}.` }] };
  } catch (e) {
    return { cfg, results: [{ check: 'settings', status: 'fail', message: userMessage(e) }] };
  }
}

export async function runDoctor(env: NodeJS.ProcessEnv = process.env): Promise<CheckResult[]> {
  const { cfg, results } = settings(env);
  if (!cfg) return results;
  // Loaded only with valid settings: the clients' modules read the configuration when imported.
  const { remoteChecks } = await import('./remote-checks.js');
  const audit = resolve(cfg.AUDIT_LOG_FILE ?? join(cfg.VBMD_DATA_DIR, 'audit', 'audit-events.ndjson'));
  return [...results, ...(await remoteChecks(cfg, audit))];
}
