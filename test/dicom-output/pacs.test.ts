import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAnalysis } from '../../src/analysis/run-analysis.js';
import type { VbmdReport } from '../../src/bmd/report.js';
import { DicomWebClient } from '../../src/dicom/dicomweb/client.js';
import { DicomWebSource } from '../../src/dicom/dicomweb/source.js';
import { writeCtSeries } from '../../src/dicom/write-series.js';
import { createPacsStep, type PacsJobResult } from '../../src/dicom-output/pacs-step.js';
import { scanPacsResults } from '../../src/dicom-output/pacs-results.js';
import { FhirClient } from '../../src/fhir/client.js';
import { startFhirServer, type StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { readNiftiFile } from '../../src/imaging/nifti.js';
import type { AnalysisJobResult } from '../../src/jobs/analysis-job.js';
import { createAnalysisHandler } from '../../src/jobs/analysis-worker.js';
import { SqliteWatchStore } from '../../src/jobs/watches.js';
import { DEFAULT_MODEL_FILE } from '../../src/model/model-file.js';
import { ModelRunner } from '../../src/model/model-runner.js';
import { tempDir } from '../dicom/synthetic-series.js';
import { startProxy } from '../dicomweb/proxy.js';
import { dciodvfy, dsrdump } from '../support/dicom-validators.js';
import { startOrthanc, type OrthancHandle } from '../support/orthanc.js';
import { TOTALSEG_DIR, totalsegAvailable } from '../support/shared-data.js';
import { naturalize, srGroups } from './read-back.js';

/**
 * End to end on the PACS side, with real parts: the real CT (TotalSegmentator example) stored in Orthanc as a
 * CT series -> the analysis worker (engine + model, FHIR server over HTTP) -> SR, SEG and key image in Orthanc
 * by STOW-RS, read back with WADO-RS and checked with dciodvfy/dsrdump; the same analysis again stores
 * nothing; a second analysis with another model version replaces the first set by an IOCM rejection note.
 */
const available = totalsegAvailable();
let dir: string;
let cleanup: () => Promise<void>;
let orthanc: OrthancHandle;
let fhir: StartedFhirServer;
let source: DicomWebSource;
let stow: DicomWebClient;
let model030: ModelRunner;
let model031: ModelRunner;
let studyUid: string;
const reports: VbmdReport[] = [];

beforeAll(async () => {
  if (!available) return;
  ({ dir, cleanup } = await tempDir('pacs'));
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  // The worker writes only to the chart of the patient the study belongs to: the Patient carries its PatientID.
  const put = await fetch(`${fhir.baseUrl}/Patient/totalseg`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id: 'totalseg', identifier: [{ system: 'urn:vbmd:test-mrn', value: 'TOTALSEG-EXAMPLE' }] }),
  });
  if (!put.ok) throw new Error(`could not create the test Patient: ${put.status}`);
  const ct = await readNiftiFile(join(TOTALSEG_DIR, 'example_ct.nii.gz'));
  const files = await writeCtSeries(join(dir, 'ct'), ct.volume, { patientId: 'TOTALSEG-EXAMPLE', patientName: 'EXAMPLE^TOTALSEG', accessionNumber: 'ACC-PACS-1', kvp: 120, acquisitionDateTime: '2024-05-06T07:08:09' });
  studyUid = (await orthanc.upload([files[0]]).then(async (r) => orthanc.rest<{ MainDicomTags: { StudyInstanceUID: string } }>('GET', `/studies/${r[0].ParentStudy}`))).MainDicomTags.StudyInstanceUID;
  await orthanc.upload(files.slice(1));
  source = new DicomWebSource({ baseUrl: orthanc.dicomWebUrl, allowInsecureHttp: true });
  stow = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, allowInsecureHttp: true, retry: { retries: 3, baseDelayMs: 20 } });
  // Another model version: the committed weights under a new version name, through the real runner.
  copyFileSync(DEFAULT_MODEL_FILE, join(dir, 'vbmd-resunet3d-0.3.1.onnx'));
  copyFileSync(DEFAULT_MODEL_FILE.replace(/\.onnx$/, '.sha256'), join(dir, 'vbmd-resunet3d-0.3.1.sha256'));
  [model030, model031] = await Promise.all([ModelRunner.start({ file: DEFAULT_MODEL_FILE }), ModelRunner.start({ file: join(dir, 'vbmd-resunet3d-0.3.1.onnx') })]);
}, 180_000);

afterAll(async () => {
  source?.close();
  stow?.close();
  await Promise.allSettled([model030?.close(), model031?.close(), orthanc?.stop(), fhir?.close()]);
  await cleanup?.();
});

/** One job through the analysis worker with the given model; the report it analysed is kept. */
async function runJob(model: ModelRunner): Promise<AnalysisJobResult> {
  const handler = createAnalysisHandler({
    source,
    analyze: async (s, ref, { signal }) => {
      const r = await runAnalysis({ source: s, ref }, { signal, model });
      reports.push(r);
      return r;
    },
    fhir: new FhirClient({ baseUrl: fhir.baseUrl }),
    watches: new SqliteWatchStore(new Database(':memory:')),
    pacs: createPacsStep(stow),
  });
  return (await handler({ studyInstanceUid: studyUid, patient: 'Patient/totalseg', trigger: 'api' }, { id: 'j', attempt: 1, signal: new AbortController().signal })) as AnalysisJobResult;
}

async function studyInstances(): Promise<{ modality: string; sop: string }[]> {
  const series = await stow.findSeries(studyUid);
  const out: { modality: string; sop: string }[] = [];
  for (const s of series) for (const i of await stow.findInstances(studyUid, s.seriesInstanceUid)) out.push({ modality: s.modality ?? '', sop: i.sopInstanceUid });
  return out;
}

async function fetchInstance(sop: string): Promise<Uint8Array> {
  const meta = await scanPacsResults(stow, studyUid, reports[0].input.seriesInstanceUid!);
  const all = meta.sets.flatMap((s) => [s.sr, ...s.members]);
  const ref = all.find((r) => r.sopInstanceUid === sop)!;
  return Buffer.from((await stow.retrieveInstance(studyUid, ref.seriesInstanceUid, sop)).body);
}

describe.skipIf(!available)('DICOM results to the PACS (Orthanc, STOW-RS, IOCM)', () => {
  let first: PacsJobResult;

  it('an analysed study gets its SR, SEG and key image in Orthanc; read back they are valid and equal the report', async () => {
    const result = await runJob(model030);
    first = result.pacs!;
    expect(first).toMatchObject({ status: 'stored', sent: 3, alreadyStored: 0, replaced: [] });
    const report = reports[0];
    const set = (await scanPacsResults(stow, studyUid, report.input.seriesInstanceUid!)).sets;
    expect(set.map((s) => s.sr.sopInstanceUid)).toEqual([first.sr]);
    for (const ref of [set[0].sr, ...set[0].members]) {
      const bytes = await fetchInstance(ref.sopInstanceUid);
      const file = join(dir, `${ref.sopInstanceUid}.dcm`);
      writeFileSync(file, bytes);
      expect(dciodvfy(file).errors, ref.sopClassUid).toEqual([]);
      if (ref === set[0].sr) {
        expect(dsrdump(file)).toMatchObject({ status: 0, errors: [] });
        const groups = srGroups(naturalize(bytes));
        for (const l of report.levels) {
          const g = groups.find((x) => x.trackingId === `${l.level} trabecular ROI (${l.roiSource})`)!;
          expect(g.nums.find((n) => n.concept === 'VBMD-QCT')?.value ?? null, l.level).toBe(l.vbmd);
        }
        expect(groups.find((x) => x.trackingId === 'vBMD summary')!.nums.find((n) => n.concept === 'VBMD-QCT')?.value ?? null).toBe(report.summary.vbmd);
      }
    }
    expect(set[0].members.map((m) => m.sopClassUid).sort()).toEqual(['1.2.840.10008.5.1.4.1.1.66.4', '1.2.840.10008.5.1.4.1.1.7']);
  });

  it('the same analysis again (a re-run job) stores nothing twice', async () => {
    const before = await studyInstances();
    const result = await runJob(model030);
    expect(reports[1].levels).toEqual(reports[0].levels);
    expect(result.pacs).toMatchObject({ status: 'already-stored', sent: 0, alreadyStored: 3, replaced: [], sr: first.sr });
    expect((await studyInstances()).length).toBe(before.length);
  });

  it('another model version replaces the earlier result set by an IOCM rejection note, with no duplicates', async () => {
    const before = await studyInstances();
    const result = await runJob(model031);
    expect(reports[2].model?.version).toBe('0.3.1');
    const second = result.pacs!;
    expect(second).toMatchObject({ status: 'stored', sent: 3, replaced: [first.sr] });
    expect(second.sr).not.toBe(first.sr);
    const after = await studyInstances();
    expect(after.length).toBe(before.length + 4);
    expect(after.filter((i) => i.modality === 'KO').map((i) => i.sop)).toEqual([second.rejectionNote]);
    const scan = await scanPacsResults(stow, studyUid, reports[2].input.seriesInstanceUid!);
    const old = scan.sets.find((s) => s.sr.sopInstanceUid === first.sr)!;
    for (const r of [old.sr, ...old.members]) expect(scan.rejected.has(r.sopInstanceUid)).toBe(true);
    const current = scan.sets.filter((s) => !scan.rejected.has(s.sr.sopInstanceUid));
    expect(current.map((s) => s.sr.sopInstanceUid)).toEqual([second.sr]);
    const note = join(dir, 'rejection-note.dcm');
    writeFileSync(note, await stow.retrieveInstance(studyUid, (await stow.findSeries(studyUid, { modality: 'KO' }))[0].seriesInstanceUid, second.rejectionNote!).then((p) => Buffer.from(p.body)));
    expect(dciodvfy(note).errors).toEqual([]);
    expect(dsrdump(note).text).toContain('Rejected for Quality Reasons');
    // Sent again: nothing new, no second rejection note.
    expect((await runJob(model031)).pacs).toMatchObject({ status: 'already-stored', sent: 0, replaced: [] });
    expect((await studyInstances()).length).toBe(after.length);
  });

  it('a transient STOW failure is retried inside the step, without analysing again', async () => {
    let posts = 0;
    const proxy = await startProxy(orthanc.baseUrl, (req, res, forward) => {
      if (req.method === 'POST' && ++posts === 1) {
        req.resume();
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
        return;
      }
      forward();
    });
    const flaky = new DicomWebClient({ baseUrl: `${proxy.url}/dicom-web`, allowInsecureHttp: true, retry: { retries: 3, baseDelayMs: 20 } });
    try {
      const report = await runAnalysis({ source, ref: { studyInstanceUid: studyUid } }, { model: null });
      const result = await createPacsStep(flaky)(report, source, new AbortController().signal);
      expect(result).toMatchObject({ status: 'stored', sent: 3 });
      expect(posts).toBeGreaterThanOrEqual(3); // 503, the retried store, the rejection note
    } finally {
      flaky.close();
      await proxy.close();
    }
  });

  it('a PACS that stays down gives a failed PACS result with the reason, not a thrown job', async () => {
    const proxy = await startProxy(orthanc.baseUrl, (req, res, forward) => {
      if (req.method === 'POST') {
        req.resume();
        res.writeHead(503).end();
        return;
      }
      forward();
    });
    const down = new DicomWebClient({ baseUrl: `${proxy.url}/dicom-web`, allowInsecureHttp: true, retry: { retries: 1, baseDelayMs: 10 } });
    try {
      // A report the PACS does not hold yet (another version label), so the step has something to store.
      const report = { ...reports[0], model: { ...reports[0].model!, version: '0.0.0-down' } };
      const result = await createPacsStep(down)(report, source, new AbortController().signal);
      expect(result.status).toBe('failed');
      expect(result.error).toContain('503');
    } finally {
      down.close();
      await proxy.close();
    }
  });
});
