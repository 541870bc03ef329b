import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, DiagnosticReport, Observation } from 'fhir/r4.js';
import { FhirClient } from '../../src/fhir/client.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { writeFhirOutputs } from '../../src/fhir/report-output.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { forStudy, lumbarOsteoporosisReport } from './reports.js';

let server: StartedFhirServer;
let dir: string;
beforeAll(async () => {
  server = await startFhirServer();
  dir = await mkdtemp(join(tmpdir(), 'vbmd-fhir-out-'));
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('writeFhirOutputs (vbmd analyze --fhir-bundle / --fhir)', () => {
  it('writes the transaction Bundle to a file and posts the same content to the server', async () => {
    const bundlePath = join(dir, 'sub', 'out.json');
    const report = forStudy(lumbarOsteoporosisReport(), 'cli');
    const r = await writeFhirOutputs(report, { bundlePath, fhirUrl: server.baseUrl, patient: '42' });
    const file = JSON.parse(await readFile(bundlePath, 'utf8')) as Bundle;
    expect(file).toEqual(r.bundle);
    expect(file.type).toBe('transaction');
    expect(r.written?.observation.created).toBe(true);
    const found = await new FhirClient({ baseUrl: server.baseUrl }).search<Observation>('Observation', { patient: 'Patient/42', code: VBMD_SUMMARY_CODE_TOKEN });
    expect(found.map((o) => o.id)).toEqual([r.written?.observation.id]);
    expect(found[0].issued).toBe((file.entry?.find((e) => e.fullUrl === (file.entry?.find((x) => x.resource?.resourceType === 'DiagnosticReport')?.resource as DiagnosticReport).result?.[0]?.reference)?.resource as Observation).issued);
    // The file can be posted as is, later, by anyone: still exactly one set.
    const again = await fetch(server.baseUrl, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(file) });
    expect(again.status).toBe(200);
    // The summary Observation and the L3 fracture finding, once each.
    expect(await new FhirClient({ baseUrl: server.baseUrl }).search('Observation', { patient: 'Patient/42' })).toHaveLength(2);
    expect(await new FhirClient({ baseUrl: server.baseUrl }).search('DiagnosticReport', { patient: 'Patient/42' })).toHaveLength(1);
  });

  it('says what is missing', async () => {
    await expect(writeFhirOutputs(lumbarOsteoporosisReport(), { bundlePath: join(dir, 'x.json') })).rejects.toThrow(/--patient/);
    await expect(writeFhirOutputs(lumbarOsteoporosisReport(), { patient: '1' })).rejects.toThrow(/--fhir-bundle/);
  });
});
