import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the sandbox keeps its local credentials (made once, mode 0600): the EHR-side CDS client key pair
 * (`vbmd hook` signs with it), a service token with full access to the sandbox FHIR server, and an API
 * token for /api/studies, /api/jobs and /api/cohort.
 */
export function sandboxPaths(dataDir: string): { dir: string; tokens: string; cdsClientKey: string; dicom: string } {
  const dir = join(dataDir, 'sandbox');
  return { dir, tokens: join(dir, 'tokens.json'), cdsClientKey: join(dir, 'cds-client.json'), dicom: join(dataDir, 'dicom') };
}

export function loadOrCreateSandboxTokens(dataDir: string): { serviceToken: string; apiToken: string } {
  const p = sandboxPaths(dataDir);
  if (existsSync(p.tokens)) return JSON.parse(readFileSync(p.tokens, 'utf8')) as { serviceToken: string; apiToken: string };
  mkdirSync(p.dir, { recursive: true });
  const t = { serviceToken: randomBytes(24).toString('base64url'), apiToken: randomBytes(24).toString('base64url') };
  writeFileSync(p.tokens, `${JSON.stringify(t, null, 2)}\n`, { mode: 0o600 });
  chmodSync(p.tokens, 0o600);
  return t;
}

