import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvConfig } from '../../src/config.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';
import { sendHook } from '../../src/cli/hook.js';
import { DEMO_PATIENT_IDS } from '../../src/sandbox/demo/patients.js';

/**
 * `npm start` with nothing configured, in process: the sandbox answers health checks, `vbmd hook` (the EHR
 * role: signed JWT, prefetch filled from the sandbox FHIR server) gets the demo cards, and the demo CT is
 * measured after an order-sign with its accession number (watch -> folder poll -> analysis -> FHIR).
 */
let dir: string;
let service: RunningService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vbmd-sandbox-'));
  service = await startService(loadEnvConfig({ VBMD_DATA_DIR: join(dir, 'data'), PORT: '0', HOST: '127.0.0.1', QIDO_POLL_INTERVAL_S: '0.5', LOG_LEVEL: 'warn' }), {
    quiet: true,
  });
}, 120_000);

afterAll(async () => {
  await service?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sandbox', () => {
  const hook = (name: 'order-sign' | 'patient-view', patient: string, extra: { accession?: string } = {}) =>
    sendHook(name, {
      patient,
      url: service.url!,
      user: 'Practitioner/sandbox-clinician',
      code: '71250',
      system: 'http://www.ama-assn.org/go/cpt',
      prefetch: true,
      key: service.sandbox!.cdsClientKeyFile,
      fhirToken: service.sandbox!.serviceToken,
      ...extra,
    });

  it('is healthy and ready, with FHIR, the DICOM folder and the queue checked', async () => {
    expect(service.mode).toBe('sandbox');
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${service.url}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { fhir: { ok: true }, dicom: { ok: true }, queue: { ok: true } } });
    // The sandbox FHIR server is not open: SMART tokens or the service token only.
    expect((await fetch(`${service.url}/fhir/Patient`)).status).toBe(401);
  });

  it('gives the demo cards through vbmd hook: warning for the declining patient, nothing for the stable one', async () => {
    const declining = await hook('patient-view', DEMO_PATIENT_IDS.declining);
    expect(declining.status).toBe(200);
    const cards = (declining.body as { cards: { indicator: string; summary: string }[] }).cards;
    expect(cards).toHaveLength(1);
    expect(cards[0]!.indicator).toBe('warning');
    expect(cards[0]!.summary).toMatch(/^Osteoporosis range: vBMD \d+\.\d mg\/cm3/);
    expect(await hook('patient-view', DEMO_PATIENT_IDS.stableNormal)).toMatchObject({ status: 200, body: { cards: [] } });
  });

  it('measures the demo CT after an order-sign with its accession, and then alerts', async () => {
    const demo = service.sandbox!.demoStudies[0]!;
    const signed = await hook('order-sign', DEMO_PATIENT_IDS.stableNormal, { accession: demo.accessionNumber });
    expect((signed.body as { cards: { summary: string }[] }).cards[0]!.summary).toContain('will be measured from this CT; last 1');
    const deadline = Date.now() + 90_000;
    let summary = '';
    while (Date.now() < deadline) {
      const r = await hook('patient-view', DEMO_PATIENT_IDS.stableNormal);
      const c = (r.body as { cards: { indicator: string; summary: string }[] }).cards[0];
      if (c) {
        expect(c.indicator).toBe('warning');
        summary = c.summary;
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    expect(summary).toMatch(/^Osteoporosis range: vBMD/);
    const v = Number(/vBMD (\d+\.\d) mg\/cm3/.exec(summary)![1]);
    expect(Math.abs(v - demo.expectedVbmdMgCm3)).toBeLessThan(15);
  }, 120_000);
});
