import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DiagnosticReport, Observation } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';
import { loadEnvConfig } from '../../src/config.js';
import { DicomWebClient } from '../../src/dicom/dicomweb/client.js';
import { readAnalysisFields } from '../../src/fhir/analysis-fields.js';
import { SNOMED, VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { DEFAULT_MODEL_FILE } from '../../src/model/model-file.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import { naturalize, seq, srGroups } from '../dicom-output/read-back.js';
import type { Natural } from '../dicom-output/read-back.js';
import { dciodvfy, dsrdump } from '../support/dicom-validators.js';
import { signOrder } from '../support/order-sign.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';

/**
 * The result on both sides, end to end with real parts: Orthanc (DICOMweb PACS), the FHIR server over HTTP,
 * the service with its embedded queue and its supervised worker process (the production worker path).
 *
 * A signed order-sign hook for a CT -> the study arrives in Orthanc -> the worker's poll finds it and analyses
 * it with the committed model (0.3.0) -> the PACS holds the SR (TID 1500), SEG and key image (read back by
 * WADO-RS, dciodvfy clean, values equal to FHIR's) and FHIR holds one DiagnosticReport with its Observations ->
 * the service comes back with another model version (the committed weights renamed 0.3.1: a real second
 * version through the real runner) and re-analyses the study -> FHIR: the same resources amended in place,
 * counted by search (no second result set, no duplicate Observation); PACS: the new SR/SEG/key image stored
 * and one IOCM rejection note rejecting exactly the old three. Orthanc 1.10 does not act on rejection notes
 * itself (it keeps showing rejected instances), so the test applies IOCM on what it reads back: what the
 * note rejects is removed, and exactly one result set must remain.
 */
const ROOT = resolve(__dirname, '../..');
const PATIENT = 'p-both-sides';
const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.1';
const TRUE_VBMD = { T11: 70, T12: 68, L1: 66, L2: 64, L3: 62 } as const;
/** DICOM SOP classes (PS3.4 Annex B): what vbmd stores, and the IOCM rejection note's class. */
const SOP = { sr: '1.2.840.10008.5.1.4.1.1.88.33', seg: '1.2.840.10008.5.1.4.1.1.66.4', sc: '1.2.840.10008.5.1.4.1.1.7', ko: '1.2.840.10008.5.1.4.1.1.88.59' } as const;
const API_TOKEN = 'both-sides-api-token';

let orthanc: OrthancHandle;
let fhir: StartedFhirServer;
let dicomweb: DicomWebClient;
let key: CdsClientKey;
let work: string;
let model031: string;
let study: { accession: string; studyUid: string; seriesUid: string; files: string[] };
let service: RunningService | undefined;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-e2e-both-'));
  [orthanc, fhir, key] = await Promise.all([startOrthanc(), startFhirServer(), generateClientKey('https://ehr.both-sides.test')]);
  dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, allowInsecureHttp: true });
  const phantom = generatePhantom({ seed: 9303, levels: 'T11-L3', vbmdMgCm3: { ...TRUE_VBMD }, size: 256, sliceThicknessMm: 1.5, kvp: 120 });
  phantom.loaded.meta.acquisitionDateTime = new Date().toISOString().slice(0, 19);
  const written = await writePhantom(join(work, 'phantom'), phantom);
  const meta = phantom.loaded.meta;
  study = { accession: meta.accessionNumber!, studyUid: meta.studyInstanceUid!, seriesUid: meta.seriesInstanceUid!, files: written.files };
  // The worker writes only to the chart of the patient the study belongs to: the Patient carries its PatientID.
  const put = await fetch(`${fhir.baseUrl}/Patient/${PATIENT}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id: PATIENT, identifier: [{ system: MRN_SYSTEM, value: meta.patientId }], name: [{ family: 'Both', given: ['Sides'] }] }),
  });
  expect(put.ok).toBe(true);
  // Another model version: the committed weights (and their checksum) under a new version name.
  model031 = join(work, 'vbmd-resunet3d-0.3.1.onnx');
  copyFileSync(DEFAULT_MODEL_FILE, model031);
  copyFileSync(DEFAULT_MODEL_FILE.replace(/\.onnx$/, '.sha256'), model031.replace(/\.onnx$/, '.sha256'));
}, 120_000);

afterAll(async () => {
  await service?.close();
  dicomweb?.close();
  await Promise.allSettled([orthanc?.stop(), fhir?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The service as radiology IT runs it: production settings, the worker in its supervised child process. */
async function start(modelFile?: string): Promise<RunningService> {
  const port = await freeLoopbackPort();
  return startService(
    loadEnvConfig({
      FHIR_BASE_URL: fhir.baseUrl,
      FHIR_BEARER_TOKEN: 'both-sides-fhir-token',
      DICOMWEB_URL: orthanc.dicomWebUrl,
      // STOW_URL unset: the DICOM results go to the DICOMweb base, as by default.
      CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
      ANALYZE_API_TOKENS: API_TOKEN,
      VBMD_DATA_DIR: join(work, 'data'),
      ...(modelFile ? { VBMD_MODEL_FILE: modelFile } : {}),
      PORT: String(port),
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      HOST: '127.0.0.1',
      QIDO_POLL_INTERVAL_S: '0.5',
      LOG_LEVEL: 'warn',
    }),
    { quiet: true },
  );
}

interface PacsResult {
  status: string;
  sr?: string;
  sent: number;
  alreadyStored: number;
  replaced: string[];
  rejectionNote?: string;
}

async function waitForJob(base: string, jobId: string): Promise<{ pacs?: PacsResult; observation: string }> {
  const deadline = Date.now() + 150_000;
  for (;;) {
    const res = await fetch(`${base}/api/jobs/${encodeURIComponent(jobId)}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    const j = res.status === 200 ? ((await res.json()) as { state: string; failedReason?: string; result?: { pacs?: PacsResult; observation: string } }) : undefined;
    if (j?.state === 'completed') return j.result!;
    if (j?.state === 'failed' || j?.state === 'needs-review') throw new Error(`job ${jobId} ${j.state}: ${j.failedReason}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for job ${jobId} (last state ${j?.state ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A FHIR search over HTTP, every match (one page: far fewer than _count). */
async function fhirSearch<T>(type: string, params: Record<string, string>): Promise<T[]> {
  const q = new URLSearchParams({ ...params, _count: '500' });
  const res = await fetch(`${fhir.baseUrl}/${type}?${q}`, { headers: { accept: 'application/fhir+json' } });
  expect(res.status).toBe(200);
  const b = (await res.json()) as { entry?: { resource: T }[]; link?: { relation: string }[] };
  expect(b.link?.some((l) => l.relation === 'next') ?? false).toBe(false);
  return (b.entry ?? []).map((e) => e.resource);
}

async function fhirState(): Promise<{ dr: DiagnosticReport[]; summary: Observation[]; obs: Observation[] }> {
  const patient = `Patient/${PATIENT}`;
  return {
    dr: await fhirSearch<DiagnosticReport>('DiagnosticReport', { patient }),
    summary: await fhirSearch<Observation>('Observation', { patient, code: VBMD_SUMMARY_CODE_TOKEN }),
    obs: await fhirSearch<Observation>('Observation', { patient }),
  };
}

interface PacsInstance {
  modality: string;
  seriesUid: string;
  sopClassUid: string;
  sop: string;
}

/** Every instance of the study on the PACS, by QIDO-RS. */
async function pacsInstances(): Promise<PacsInstance[]> {
  const out: PacsInstance[] = [];
  for (const s of await dicomweb.findSeries(study.studyUid)) {
    for (const i of await dicomweb.findInstances(study.studyUid, s.seriesInstanceUid)) out.push({ modality: s.modality ?? '', seriesUid: s.seriesInstanceUid, sopClassUid: i.sopClassUid ?? '', sop: i.sopInstanceUid });
  }
  return out;
}

/** One instance read back by WADO-RS, saved for the validators, and parsed by dcmjs. */
async function readBack(i: PacsInstance): Promise<{ file: string; ds: Natural }> {
  const bytes = Buffer.from((await dicomweb.retrieveInstance(study.studyUid, i.seriesUid, i.sop)).body);
  const file = join(work, `${i.sop}.dcm`);
  writeFileSync(file, bytes);
  return { file, ds: naturalize(bytes) };
}

/** The SOP Instance UIDs a Hierarchical SOP Instance Reference sequence (evidence) names, with their series. */
function evidence(ds: Natural, key: string): { seriesUid: string; sop: string }[] {
  return seq(ds, key).flatMap((st) =>
    seq(st, 'ReferencedSeriesSequence').flatMap((se) => seq(se, 'ReferencedSOPSequence').map((r) => ({ seriesUid: String(se.SeriesInstanceUID), sop: String(r.ReferencedSOPInstanceUID) }))),
  );
}

type ResultSet = Record<'sr' | 'seg' | 'keyImage', PacsInstance>;

/** The result instances (SR, SEG, key image; not the CT, not the rejection note) among the study's instances. */
function resultInstances(all: PacsInstance[]): PacsInstance[] {
  return all.filter((i) => ([SOP.sr, SOP.seg, SOP.sc] as string[]).includes(i.sopClassUid));
}

/**
 * One result set on the PACS checked against FHIR: each object valid (dciodvfy; dsrdump for the SR), the SR
 * naming the source CT series, its SEG and its key image, the SEG framed on the source series, and the SR's
 * values, levels and algorithm version equal to the summary Observation's.
 */
async function checkResultSet(set: ResultSet, summary: Observation, modelVersion: string): Promise<void> {
  const [sr, seg, keyImage] = await Promise.all([readBack(set.sr), readBack(set.seg), readBack(set.keyImage)]);
  for (const [what, o] of [['SR', sr], ['SEG', seg], ['key image', keyImage]] as const) expect(dciodvfy(o.file).errors, what).toEqual([]);
  expect(dsrdump(sr.file)).toMatchObject({ status: 0, errors: [] });
  const cited = evidence(sr.ds, 'CurrentRequestedProcedureEvidenceSequence');
  expect(cited.some((e) => e.seriesUid === study.seriesUid)).toBe(true);
  expect(cited.map((e) => e.sop)).toContain(set.seg.sop);
  expect(evidence(sr.ds, 'PertinentOtherEvidenceSequence').map((e) => e.sop)).toEqual([set.keyImage.sop]);
  expect(seq(seg.ds, 'ReferencedSeriesSequence').map((s) => s.SeriesInstanceUID)).toEqual([study.seriesUid]);

  const groups = srGroups(sr.ds);
  const vbmdOf = (g: (typeof groups)[number]) => g.nums.find((n) => n.concept === 'VBMD-QCT');
  const srSummary = vbmdOf(groups.find((g) => g.trackingId === 'vBMD summary')!)!;
  // FHIR carries mg/cm3 to a tenth (the SR the full value): equal after the same rounding.
  expect(Math.round(srSummary.value * 10) / 10).toBe(summary.valueQuantity!.value);
  expect(srSummary.unit).toBe('mg/cm3');
  expect(srSummary.algorithm[1]).toMatch(new RegExp(`^${modelVersion.replace(/\./g, '\\.')} `));
  // Per level: the SR's reported (included) group and the Observation's component agree on vertebra and value.
  const included = groups.filter((g) => g.codes['LEVEL-INCLUDED'] === '373066001');
  const valued = (summary.component ?? []).filter((c) => c.valueQuantity?.value !== undefined);
  expect(valued.length).toBeGreaterThanOrEqual(2);
  expect(included.map((g) => g.trackingId!.split(' ')[0]).sort()).toEqual(valued.map((c) => c.code.text).sort());
  for (const c of valued) {
    const g = included.find((x) => x.trackingId!.startsWith(`${c.code.text} `))!;
    expect(Math.round(vbmdOf(g)!.value * 10) / 10, c.code.text).toBe(c.valueQuantity!.value);
    expect(g.findingSite, c.code.text).toBe(c.code.coding?.find((x) => x.system === SNOMED)?.code);
  }
}

/** The result set whose SR is `srSop`, as the PACS holds it: the SR, and the SEG and key image it names as evidence. */
async function setOf(srSop: string, all: PacsInstance[]): Promise<ResultSet> {
  const sr = all.find((i) => i.sop === srSop && i.sopClassUid === SOP.sr);
  expect(sr, `SR ${srSop} on the PACS`).toBeDefined();
  const ds = (await readBack(sr!)).ds;
  const named = (key: string, sopClassUid: string): PacsInstance[] => {
    const sops = evidence(ds, key).map((e) => e.sop);
    return all.filter((i) => i.sopClassUid === sopClassUid && sops.includes(i.sop));
  };
  const [segs, keyImages] = [named('CurrentRequestedProcedureEvidenceSequence', SOP.seg), named('PertinentOtherEvidenceSequence', SOP.sc)];
  expect([segs.length, keyImages.length], 'the SEG and key image the SR names, on the PACS').toEqual([1, 1]);
  return { sr: sr!, seg: segs[0]!, keyImage: keyImages[0]! };
}

describe('results on the PACS and in the record, end to end', () => {
  let first: { dr: DiagnosticReport; summary: Observation; obsIds: string[]; sr: string; set: ResultSet; analysisKey: string };
  let ctCount: number;

  it('order-sign -> study in Orthanc -> worker -> SR, SEG and key image in Orthanc (valid, equal to FHIR) and one DiagnosticReport with its Observations', async () => {
    service = await start();
    const base = service.url!;
    const signed = await signOrder(base, key, { patientId: PATIENT, userId: 'Practitioner/dr-both', serviceRequestId: 'sr-both', accession: study.accession, cpt: '74177', fhirServer: fhir.baseUrl });
    expect(signed.status).toBe(200);
    expect(signed.cards.map((c) => c.indicator)).toEqual(['info']);
    expect(signed.cards[0]!.summary).toContain('will be measured from this CT');
    expect(await service.stores.watches.findByAccession(study.accession)).toMatchObject({ patientId: PATIENT, serviceRequestId: 'sr-both', status: 'waiting' });

    await orthanc.upload(study.files);
    ctCount = study.files.length;
    const job = await waitForJob(base, `study-${study.studyUid}`);
    expect((await service.stores.watches.findByAccession(study.accession))?.status).toBe('found');
    expect(job.pacs).toMatchObject({ status: 'stored', sent: 3, alreadyStored: 0, replaced: [] });

    // FHIR: one DiagnosticReport, its results all found by search, one summary, valid R4.
    const f = await fhirState();
    expect([f.dr.length, f.summary.length]).toEqual([1, 1]);
    const dr = f.dr[0]!;
    const summary = f.summary[0]!;
    expect(job.observation).toBe(`Observation/${summary.id}`);
    expect(dr.status).toBe('final');
    expect(dr.basedOn?.[0]?.reference).toBe('ServiceRequest/sr-both');
    expect(dr.imagingStudy?.[0]?.identifier).toEqual({ system: 'urn:dicom:uid', value: `urn:oid:${study.studyUid}` });
    expect(dr.conclusion).toMatch(/\d+\.\d mg\/cm3/);
    expect(dr.result?.map((r) => r.reference).sort()).toEqual(f.obs.map((o) => `Observation/${o.id}`).sort());
    expect(readAnalysisFields(dr)?.algorithm.model?.version).toBe('0.3.0');
    for (const r of [dr, ...f.obs]) expect(fhirValidationIssues(r), `${r.resourceType}/${r.id}`).toEqual([]);

    // PACS: the CT plus exactly one SR, one SEG and one key image, no rejection note yet.
    const all = await pacsInstances();
    expect(all.filter((i) => i.modality === 'CT')).toHaveLength(ctCount);
    const results = resultInstances(all);
    expect(results.map((i) => i.modality).sort()).toEqual(['OT', 'SEG', 'SR']);
    expect(all).toHaveLength(ctCount + 3);
    const set = await setOf(job.pacs!.sr!, all);
    await checkResultSet(set, summary, '0.3.0');
    first = { dr, summary, obsIds: f.obs.map((o) => o.id!).sort(), sr: set.sr.sop, set, analysisKey: readAnalysisFields(dr)!.analysisKey! };
    await service.close();
    service = undefined;
  }, 180_000);

  it('another model version supersedes on both sides: FHIR amended in place, PACS new set + IOCM rejection of the old one, one result set each', async () => {
    expect(first, 'the first analysis ran').toBeDefined();
    service = await start(model031);
    const res = await fetch(`${service.url!}/api/studies/${study.studyUid}/analyze?reanalyze=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` },
      body: JSON.stringify({ patient: `Patient/${PATIENT}`, serviceRequest: 'ServiceRequest/sr-both' }),
    });
    expect(res.status).toBe(202);
    const job = await waitForJob(service.url!, ((await res.json()) as { jobId: string }).jobId);
    expect(job.pacs).toMatchObject({ status: 'stored', sent: 3, alreadyStored: 0, replaced: [first.sr] });
    expect(job.pacs!.sr).not.toBe(first.sr);

    // FHIR: still one report and one summary, the same resources (same ids, same Observation count) amended.
    const f = await fhirState();
    expect([f.dr.length, f.summary.length]).toEqual([1, 1]);
    expect(f.obs.map((o) => o.id!).sort()).toEqual(first.obsIds);
    const dr = f.dr[0]!;
    const summary = f.summary[0]!;
    expect([dr.id, summary.id]).toEqual([first.dr.id, first.summary.id]);
    expect([dr.status, summary.status]).toEqual(['amended', 'amended']);
    expect(readAnalysisFields(dr)).toMatchObject({ superseded: [first.analysisKey], algorithm: { model: { version: '0.3.1' } } });
    expect(readAnalysisFields(dr)!.analysisKey).not.toBe(first.analysisKey);
    // Amended in place: the report has two versions, the first still readable as it was.
    const history = (await (await fetch(`${fhir.baseUrl}/DiagnosticReport/${dr.id}/_history`)).json()) as { entry?: unknown[] };
    expect(history.entry).toHaveLength(2);
    const was = (await (await fetch(`${fhir.baseUrl}/DiagnosticReport/${dr.id}/_history/${first.dr.meta!.versionId}`)).json()) as DiagnosticReport;
    expect([was.status, readAnalysisFields(was)?.analysisKey]).toEqual(['final', first.analysisKey]);
    for (const r of [dr, ...f.obs]) expect(fhirValidationIssues(r), `${r.resourceType}/${r.id}`).toEqual([]);

    // PACS: three new objects and one rejection note, nothing else.
    const all = await pacsInstances();
    expect(all).toHaveLength(ctCount + 3 + 3 + 1);
    const notes = all.filter((i) => i.modality === 'KO');
    expect(notes.map((n) => [n.sopClassUid, n.sop])).toEqual([[SOP.ko, job.pacs!.rejectionNote]]);
    const second = await setOf(job.pacs!.sr!, all);
    await checkResultSet(second, summary, '0.3.1');

    // The rejection note: valid, titled "Rejected for Quality Reasons" (CID 7011), rejecting exactly the old set.
    const note = await readBack(notes[0]!);
    expect(dciodvfy(note.file).errors).toEqual([]);
    expect(dsrdump(note.file)).toMatchObject({ status: 0, errors: [] });
    expect(seq(note.ds, 'ConceptNameCodeSequence').map((c) => [c.CodeValue, c.CodingSchemeDesignator])).toEqual([['113001', 'DCM']]);
    const rejected = evidence(note.ds, 'CurrentRequestedProcedureEvidenceSequence').map((e) => e.sop);
    expect(rejected.sort()).toEqual([first.set.sr.sop, first.set.seg.sop, first.set.keyImage.sop].sort());

    // Applying IOCM (which Orthanc 1.10 does not do itself): what remains is exactly the new result set.
    const remaining = resultInstances(all).filter((i) => !rejected.includes(i.sop));
    expect(remaining.map((i) => i.sop).sort()).toEqual([second.sr.sop, second.seg.sop, second.keyImage.sop].sort());
  }, 180_000);

  it('the README says what lands on the PACS and what in the record', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const sections = readme.split(/^(?=## )/m).filter((s) => /^## What lands/i.test(s));
    const pacs = sections.find((s) => /PACS/.test(s.split('\n')[0]!));
    const record = sections.find((s) => /record|FHIR/.test(s.split('\n')[0]!));
    expect(pacs, 'a "## What lands ... PACS" section').toBeDefined();
    expect(record, 'a "## What lands ... record (FHIR)" section').toBeDefined();
    for (const word of [/\bSR\b/, /\bSEG\b|Segmentation/, /key image/i, /STOW/]) expect(pacs).toMatch(word);
    for (const word of [/DiagnosticReport/, /Observation/]) expect(record).toMatch(word);
  });
});
