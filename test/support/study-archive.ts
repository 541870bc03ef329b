import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import type { OrthancHandle } from './orthanc.js';

/**
 * Many small, analysable CT studies in a real Orthanc, cheaply: one small phantom (128 x 128, 3 mm slices,
 * T12-L2: about 34 instances, 1.2 MB) is generated and uploaded once, then copied by Orthanc's own
 * `/studies/{id}/modify` with another patient, date and accession; Orthanc gives each copy new Study, Series
 * and SOP Instance UIDs (PS3.15 E: modification replaces UIDs unless told to keep them). The base study is
 * deleted afterwards, so the PACS holds exactly the copies.
 */
export interface ArchiveStudy {
  studyInstanceUid: string;
  patientId: string;
  accessionNumber: string;
  /** YYYYMMDD */
  studyDate: string;
}

export interface ArchiveSpec {
  patientId: string;
  accessionNumber: string;
  studyDate: string;
}

export async function uploadBaseStudy(orthanc: OrthancHandle, seed = 4242): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vbmd-archive-'));
  try {
    const phantom = generatePhantom({ seed, levels: 'T12-L2', size: 128, sliceThicknessMm: 3, kvp: 120, vbmdMgCm3: { T12: 72, L1: 70, L2: 68 } });
    const written = await writePhantom(dir, phantom);
    const uploaded = await orthanc.upload(written.files);
    // The base itself is dated long before any test's range, so a date-range search never finds it.
    const original = uploaded[0]!.ParentStudy;
    const [template] = await copyStudies(orthanc, original, [{ patientId: 'TEMPLATE', accessionNumber: `TEMPLATE-${seed}`, studyDate: '19000101' }]);
    await deleteStudy(orthanc, original);
    const found = await orthanc.rest<string[]>('POST', '/tools/find', { Level: 'Study', Query: { StudyInstanceUID: template!.studyInstanceUid } });
    return found[0]!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One modified copy of the Orthanc study `baseId` per spec, in order (accession numbers must be unique). */
export async function copyStudies(orthanc: OrthancHandle, baseId: string, specs: readonly ArchiveSpec[]): Promise<ArchiveStudy[]> {
  // Orthanc 1.10 changes PatientID only at patient level: the base patient (holding only the base study) is
  // copied, which copies its study with new UIDs.
  const basePatient = (await orthanc.rest<{ ParentPatient: string }>('GET', `/studies/${baseId}`)).ParentPatient;
  const out: ArchiveStudy[] = [];
  for (const s of specs) {
    await orthanc.rest('POST', `/patients/${basePatient}/modify`, {
      Replace: { PatientID: s.patientId, PatientName: `ARCHIVE^${s.patientId}`, StudyDate: s.studyDate, SeriesDate: s.studyDate, AccessionNumber: s.accessionNumber },
      Force: true,
    });
    const found = await orthanc.rest<{ MainDicomTags: { StudyInstanceUID: string } }[]>('POST', '/tools/find', { Level: 'Study', Query: { AccessionNumber: s.accessionNumber }, Expand: true });
    if (found.length !== 1) throw new Error(`expected one study with accession ${s.accessionNumber}, Orthanc has ${found.length}`);
    out.push({ studyInstanceUid: found[0]!.MainDicomTags.StudyInstanceUID, patientId: s.patientId, accessionNumber: s.accessionNumber, studyDate: s.studyDate });
  }
  return out;
}

export async function deleteStudy(orthanc: OrthancHandle, id: string): Promise<void> {
  await orthanc.rest('DELETE', `/studies/${id}`);
}
