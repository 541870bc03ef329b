import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device, DiagnosticReport, DocumentReference, Observation, Provenance, RiskAssessment } from 'fhir/r4.js';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { CDS_SERVICES } from '../../cds-hooks/discovery.js';
import { fillTemplate } from '../../cds-hooks/prefetch.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';
import { loadEnvConfig } from '../../src/config.js';
import { readAnalysisFields } from '../../src/fhir/analysis-fields.js';
import { FhirClient } from '../../src/fhir/client.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import { signOrder } from '../support/order-sign.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';

/**
 * The FHIR side of the result end to end, with real parts (Orthanc, the FHIR server over HTTP, the service
 * with its embedded queue and in-process worker): order-sign -> the study arrives in Orthanc -> one
 * DiagnosticReport with its Observations (each searchable), RiskAssessment, Device and Provenance, all valid
 * R4 -> the service restarted with the network model (another algorithm version) re-analyses the study ->
 * the same resources are amended in place, the model card is written, the new Provenance names the old
 * versions, and nothing is duplicated -> the patient-view card reads it.
 */
const PATIENT = 'p-lifecycle';
const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.1';

let orthanc: OrthancHandle;
let fhir: StartedFhirServer;
let client: FhirClient;
let work: string;
let key: CdsClientKey;
let study: { accession: string; studyUid: string; files: string[] };
let service: RunningService | undefined;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-e2e-fhir-'));
  [orthanc, fhir, key] = await Promise.all([startOrthanc(), startFhirServer(), generateClientKey('https://ehr.lifecycle.test')]);
  client = new FhirClient({ baseUrl: fhir.baseUrl });
  const phantom = generatePhantom({ seed: 9202, levels: 'T11-L3', vbmdMgCm3: { T11: 66, T12: 64, L1: 62, L2: 60, L3: 59 }, size: 256, sliceThicknessMm: 1.5, kvp: 120 });
  phantom.loaded.meta.acquisitionDateTime = new Date().toISOString().slice(0, 19);
  const written = await writePhantom(join(work, 'phantom'), phantom);
  study = { accession: phantom.loaded.meta.accessionNumber!, studyUid: phantom.loaded.meta.studyInstanceUid!, files: written.files };
  await client.request('PUT', `Patient/${PATIENT}`, {
    body: { resourceType: 'Patient', id: PATIENT, identifier: [{ system: MRN_SYSTEM, value: phantom.loaded.meta.patientId }], name: [{ family: 'Lifecycle', given: ['Test'] }] },
  });
}, 180_000);

afterAll(async () => {
  await service?.close();
  await Promise.allSettled([orthanc?.stop(), fhir?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

async function start(model: boolean): Promise<RunningService> {
  const port = await freeLoopbackPort();
  return startService(
    loadEnvConfig({
      FHIR_BASE_URL: fhir.baseUrl,
      FHIR_BEARER_TOKEN: 'lifecycle-fhir-token',
      DICOMWEB_URL: orthanc.dicomWebUrl,
      // The DICOM results (SR/SEG) are another test's subject.
      STOW_URL: 'none',
      CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
      ANALYZE_API_TOKENS: 'lifecycle-api-token',
      VBMD_DATA_DIR: join(work, 'data'),
      VBMD_MODEL: model ? 'true' : 'false',
      PORT: String(port),
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      HOST: '127.0.0.1',
      QIDO_POLL_INTERVAL_S: '0.5',
      LOG_LEVEL: 'warn',
    }),
    { quiet: true },
  );
}

async function waitForJob(base: string, jobId: string): Promise<void> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const res = await fetch(`${base}/api/jobs/${encodeURIComponent(jobId)}`, { headers: { authorization: 'Bearer lifecycle-api-token' } });
    const j = res.status === 200 ? ((await res.json()) as { state: string; failedReason?: string }) : undefined;
    if (j?.state === 'completed') return;
    if (j?.state === 'failed') throw new Error(`job ${jobId} failed: ${j.failedReason}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for job ${jobId}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function current(): Promise<{ dr: DiagnosticReport[]; summary: Observation[]; obs: Observation[]; risk: RiskAssessment[] }> {
  const obs = await client.search<Observation>('Observation', { patient: `Patient/${PATIENT}` });
  return {
    dr: await client.search<DiagnosticReport>('DiagnosticReport', { patient: `Patient/${PATIENT}` }),
    summary: await client.search<Observation>('Observation', { patient: `Patient/${PATIENT}`, code: VBMD_SUMMARY_CODE_TOKEN }),
    obs,
    risk: await client.search<RiskAssessment>('RiskAssessment', { patient: `Patient/${PATIENT}` }),
  };
}

async function provenancesOf(ref: string): Promise<Provenance[]> {
  return (await client.search<Provenance>('Provenance', { _count: 1000 })).filter((p) => p.target.some((t) => t.reference === ref));
}

describe('FHIR result set end to end', () => {
  it('order-sign -> study in Orthanc -> one DiagnosticReport with its Observations; a re-analysis by another algorithm supersedes in place, no duplicates', async () => {
    // 1. The geometric engine alone (no network) analyses the study the signed order announced.
    service = await start(false);
    const base = service.url!;
    const signed = await signOrder(base, key, { patientId: PATIENT, userId: 'Practitioner/dr', serviceRequestId: 'sr-lifecycle', accession: study.accession, cpt: '74177' });
    expect(signed.status).toBe(200);
    await orthanc.upload(study.files);
    await waitForJob(base, `study-${study.studyUid}`);

    const first = await current();
    expect(first.dr).toHaveLength(1);
    expect(first.summary).toHaveLength(1);
    const dr = first.dr[0]!;
    const obs = first.summary[0]!;
    expect(dr.status).toBe('final');
    expect(dr.basedOn?.[0]?.reference).toBe('ServiceRequest/sr-lifecycle');
    expect(dr.imagingStudy?.[0]?.identifier).toEqual({ system: 'urn:dicom:uid', value: `urn:oid:${study.studyUid}` });
    expect(dr.result?.map((r) => r.reference)).toContain(`Observation/${obs.id}`);
    // Every Observation of the report is a resource of its own, found by searching.
    for (const r of dr.result ?? []) expect(first.obs.map((o) => `Observation/${o.id}`)).toContain(r.reference);
    expect(dr.conclusion).toMatch(/^Vertebral trabecular bone density \d+\.\d mg\/cm3/);
    expect(obs.interpretation?.[0]?.coding?.[0]?.code).toMatch(/^[NL]$/);
    const device1 = await client.read<Device>('Device', obs.device!.reference!.split('/')[1]!);
    expect(device1.extension?.find((e) => e.url.endsWith('AIKind'))?.valueCodeableConcept?.coding?.[0]?.code).toBe('Rule-Based-Systems');
    for (const r of [dr, ...first.obs, ...first.risk, device1, ...(await provenancesOf(`DiagnosticReport/${dr.id}`))]) {
      expect(fhirValidationIssues(r), `${r.resourceType}/${r.id}`).toEqual([]);
      if (r.resourceType !== 'Device') expect(r.meta?.security?.map((s) => s.code), r.resourceType).toEqual(['AIAST']);
    }
    const key1 = readAnalysisFields(dr)!.analysisKey;
    await service.close();
    service = undefined;

    // 2. The service comes back with the network model: re-analysis of the same study.
    service = await start(true);
    const again = await fetch(`${service.url!}/api/studies/${study.studyUid}/analyze?reanalyze=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer lifecycle-api-token' },
      body: JSON.stringify({ patient: `Patient/${PATIENT}`, serviceRequest: 'ServiceRequest/sr-lifecycle' }),
    });
    expect(again.status).toBe(202);
    await waitForJob(service.url!, ((await again.json()) as { jobId: string }).jobId);

    const second = await current();
    expect([second.dr.length, second.summary.length, second.obs.length, second.risk.length]).toEqual([1, 1, first.obs.length, first.risk.length]);
    const dr2 = second.dr[0]!;
    const obs2 = second.summary[0]!;
    expect([dr2.id, obs2.id]).toEqual([dr.id, obs.id]);
    expect([dr2.status, obs2.status]).toEqual(['amended', 'amended']);
    expect(readAnalysisFields(dr2)).toMatchObject({ superseded: [key1], algorithm: { model: { name: 'vbmd-resunet3d' } } });
    const device2 = await client.read<Device>('Device', obs2.device!.reference!.split('/')[1]!);
    expect(device2.id).not.toBe(device1.id);
    const cardRef = device2.extension?.find((e) => e.url.endsWith('modelCardDescription'))?.valueReference?.reference;
    const card = await client.read<DocumentReference>('DocumentReference', cardRef!.split('/')[1]!);
    expect(card.content[0]?.attachment.contentType).toBe('text/markdown');
    const provs = await provenancesOf(`DiagnosticReport/${dr.id}`);
    expect(provs).toHaveLength(2);
    const revised = provs.flatMap((p) => p.entity ?? []).filter((e) => e.role === 'revision').map((e) => e.what.reference);
    expect(revised).toContain(`DiagnosticReport/${dr.id}/_history/${dr.meta!.versionId}`);
    for (const r of [dr2, ...second.obs, ...second.risk, device2, card, ...provs]) expect(fhirValidationIssues(r), `${r.resourceType}/${r.id}`).toEqual([]);

    // 3. The chart is opened: the card reads the amended result.
    const def = CDS_SERVICES.find((s) => s.id === 'vbmd-patient-view')!;
    const context = { userId: 'Practitioner/dr', patientId: PATIENT };
    const prefetch: Record<string, unknown> = {};
    for (const [k, template] of Object.entries(def.prefetch)) prefetch[k] = await (await fetch(`${fhir.baseUrl}/${fillTemplate(template, context)!}`)).json();
    const pvUrl = `${service.url!}/cds-services/vbmd-patient-view`;
    const viewed = await fetch(pvUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, pvUrl)}` },
      body: JSON.stringify({ hook: 'patient-view', hookInstance: crypto.randomUUID(), context, prefetch }),
    });
    const cards = ((await viewed.json()) as { cards: { summary: string; detail: string }[] }).cards;
    expect(cards).toHaveLength(1);
    expect(cards[0]!.summary).toContain(`${obs2.valueQuantity!.value!.toFixed(1)} mg/cm3`);
    // Everything was readable, so nothing is "could not check".
    expect(cards[0]!.detail).not.toContain('Could not check');
  }, 600_000);
});
