import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FhirClient } from '../../src/fhir/client.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { DEMO_PATIENT_IDS, seedDemoData } from '../../src/sandbox/demo/patients.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';

/** Bulk Data Access 2.0 system export from the in-process server, followed by the book over HTTP. */
let server: StartedFhirServer;
beforeAll(async () => {
  server = await startFhirServer({
    verifyAccess: async (req) => (req.headers.authorization === 'Bearer bulk' ? { ok: true } : { ok: false, status: 401 }),
  });
  await seedDemoData(server.repository, { now: new Date('2026-06-01T00:00:00Z') });
});
afterAll(async () => {
  await server?.close();
});

const auth = { authorization: 'Bearer bulk' };

describe('$export', () => {
  it('kick-off -> 202 status -> manifest -> NDJSON files -> delete', async () => {
    const kick = await fetch(`${server.baseUrl}/$export?_type=Observation,Patient,MedicationRequest`, { headers: { ...auth, prefer: 'respond-async', accept: 'application/fhir+json' } });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    expect(statusUrl).toMatch(/\/fhir\/\$export-status\//);
    const first = await fetch(statusUrl, { headers: auth });
    expect(first.status).toBe(202);
    expect(first.headers.get('retry-after')).toBe('1');
    const done = await fetch(statusUrl, { headers: auth });
    expect(done.status).toBe(200);
    const manifest = (await done.json()) as { requiresAccessToken: boolean; output: { type: string; url: string; count: number }[]; transactionTime: string };
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.output.map((o) => o.type).sort()).toEqual(['MedicationRequest', 'Observation', 'Patient']);

    const obsFile = manifest.output.find((o) => o.type === 'Observation')!;
    expect((await fetch(obsFile.url)).status).toBe(401);
    const text = await (await fetch(obsFile.url, { headers: auth })).text();
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { resourceType: string });
    expect(lines).toHaveLength(obsFile.count);
    expect(lines.every((r) => r.resourceType === 'Observation')).toBe(true);
    const searched = await new FhirClient({ baseUrl: server.baseUrl, auth: { token: async () => 'bulk', invalidate: () => undefined } }).search('Observation', { _count: 1000 });
    expect(lines).toHaveLength(searched.length);

    expect((await fetch(statusUrl, { method: 'DELETE', headers: auth })).status).toBe(202);
    expect((await fetch(statusUrl, { headers: auth })).status).toBe(404);
  });

  it('applies _typeFilter (the population code asks for vBMD Observations only)', async () => {
    const url = new URL(`${server.baseUrl}/$export`);
    url.searchParams.set('_type', 'Observation');
    url.searchParams.set('_typeFilter', `Observation?code=${VBMD_SUMMARY_CODE_TOKEN}&patient=Patient/${DEMO_PATIENT_IDS.declining}`);
    const kick = await fetch(url, { headers: { ...auth, prefer: 'respond-async' } });
    const statusUrl = kick.headers.get('content-location')!;
    await fetch(statusUrl, { headers: auth });
    const manifest = (await (await fetch(statusUrl, { headers: auth })).json()) as { output: { type: string; url: string; count: number }[] };
    expect(manifest.output).toHaveLength(1);
    const lines = (await (await fetch(manifest.output[0].url, { headers: auth })).text()).trim().split('\n').map((l) => JSON.parse(l) as { subject: { reference: string } });
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.every((o) => o.subject.reference === `Patient/${DEMO_PATIENT_IDS.declining}`)).toBe(true);
  });

  it('refuses what it does not support, with an OperationOutcome', async () => {
    const noPrefer = await fetch(`${server.baseUrl}/$export`, { headers: auth });
    expect(noPrefer.status).toBe(400);
    const patientLevel = await fetch(`${server.baseUrl}/Patient/$export`, { headers: { ...auth, prefer: 'respond-async' } });
    expect(patientLevel.status).toBe(400);
    const badType = await fetch(`${server.baseUrl}/$export?_type=Nope`, { headers: { ...auth, prefer: 'respond-async' } });
    expect(badType.status).toBe(400);
    expect(((await badType.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });
});
