import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateClientKeyFile, readClientKeyFile, signClientJwt } from '../../cds-hooks/client-jwt.js';
import { sendHook } from '../../src/cli/hook.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';
import { loadEnvConfig, serviceMode } from '../../src/config.js';
import { DEMO_PATIENT_IDS } from '../../src/sandbox/demo/patients.js';

/**
 * The sandbox trusts an outside CDS client registered through CDS_CLIENTS (as the reference CDS Hooks sandbox
 * or an EHR's test system would be), next to its own key, without turning into a production service; with
 * SANDBOX_ANONYMOUS_READ that client fills its prefetch from the sandbox FHIR server without a token, the way
 * the reference sandbox reads an open FHIR server. Every hook in discovery answers 200 with cards.
 */
const OUTSIDE_ISS = 'https://cds-sandbox.example.org';
const CPT = 'http://www.ama-assn.org/go/cpt';
let dir: string;
let keyFile: string;
let service: RunningService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vbmd-outside-client-'));
  keyFile = join(dir, 'outside-client-key.json');
  const key = await loadOrCreateClientKeyFile(keyFile, OUTSIDE_ISS);
  service = await startService(
    loadEnvConfig({
      VBMD_DATA_DIR: join(dir, 'data'),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      RUN_WORKER: 'false',
      CDS_CLIENTS: JSON.stringify([{ iss: OUTSIDE_ISS, jwks: { keys: [key.publicJwk] } }]),
      SANDBOX_ANONYMOUS_READ: 'true',
    }),
    { quiet: true, skipDemoStudies: true },
  );
}, 120_000);

afterAll(async () => {
  await service?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sandbox with an outside CDS client (CDS_CLIENTS)', () => {
  it('CDS_CLIENTS does not choose production; FHIR_BASE_URL or DICOMWEB_URL do; anonymous reads are refused outside the sandbox', () => {
    expect(service.mode).toBe('sandbox');
    const clients = JSON.stringify([{ iss: OUTSIDE_ISS, jwks_url: `${OUTSIDE_ISS}/jwks.json` }]);
    expect(serviceMode(loadEnvConfig({ CDS_CLIENTS: clients }))).toBe('sandbox');
    const production = { CDS_CLIENTS: clients, FHIR_BASE_URL: 'https://ehr.example.org/fhir', FHIR_BEARER_TOKEN: 't', DICOMWEB_URL: 'https://pacs.example.org/dicom-web', PUBLIC_BASE_URL: 'https://vbmd.example.org' };
    expect(serviceMode(loadEnvConfig(production))).toBe('production');
    expect(() => serviceMode(loadEnvConfig({ DICOMWEB_URL: 'https://pacs.example.org/dicom-web' }))).toThrow(/FHIR_BASE_URL is not set/);
    expect(() => serviceMode(loadEnvConfig({ ...production, SANDBOX_ANONYMOUS_READ: 'true' }))).toThrow(/SANDBOX_ANONYMOUS_READ is for the sandbox only/);
  });

  it('the sandbox FHIR server answers anonymous reads of its synthetic data, and still refuses anonymous writes', async () => {
    const base = `${service.url}/fhir`;
    const read = await fetch(`${base}/Patient/${DEMO_PATIENT_IDS.declining}`);
    expect(read.status).toBe(200);
    expect(((await read.json()) as { id: string }).id).toBe(DEMO_PATIENT_IDS.declining);
    const write = await fetch(`${base}/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient' }) });
    expect(write.status).toBe(401);
    // A token that is sent is still checked.
    expect((await fetch(`${base}/Patient/${DEMO_PATIENT_IDS.declining}`, { headers: { authorization: 'Bearer not-a-token' } })).status).toBe(401);
  });

  it('every hook in discovery answers the outside client with 200 and cards (prefetch read anonymously)', async () => {
    const url = `${service.url}/cds-services`;
    const key = await readClientKeyFile(keyFile);
    const discovery = await fetch(url, { headers: { authorization: `Bearer ${await signClientJwt(key, url)}` } });
    expect(discovery.status).toBe(200);
    const ids = ((await discovery.json()) as { services: { hook: string }[] }).services.map((s) => s.hook).sort();
    expect(ids).toEqual(['order-select', 'order-sign', 'patient-view']);
    for (const hook of ids as ('order-select' | 'order-sign' | 'patient-view')[]) {
      const r = await sendHook(hook, { patient: DEMO_PATIENT_IDS.declining, url: service.url!, user: 'Practitioner/outside-clinician', code: '71250', system: CPT, prefetch: true, key: keyFile, fhir: `${service.url}/fhir` });
      const cards = (r.body as { cards?: { summary: string; indicator: string }[] }).cards ?? [];
      expect({ hook, status: r.status, cards: cards.length > 0 }).toEqual({ hook, status: 200, cards: true });
    }
  });

  it('a client that is neither the sandbox key nor in CDS_CLIENTS is refused', async () => {
    const stranger = await loadOrCreateClientKeyFile(join(dir, 'stranger-key.json'), 'https://stranger.example.org');
    const url = `${service.url}/cds-services`;
    expect((await fetch(url, { headers: { authorization: `Bearer ${await signClientJwt(stranger, url)}` } })).status).toBe(401);
  });
});
