import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePhantom, writePhantom } from '../../research/phantom/index.js';
import { DEMO_PATIENT_IDS } from './patients.js';
import { log } from '../../util/log.js';

/**
 * The sandbox's demo CT: one synthetic chest/abdomen study (the phantom generator, src/research/phantom/) with
 * osteoporotic lumbar vBMD, written once into the sandbox DICOM folder. Its accession number is what
 * `vbmd hook order-sign --accession` uses to show the whole flow: order -> watch -> study found -> analysis
 * -> FHIR -> patient-view card.
 */
export interface DemoStudy {
  /** The demo patient the study belongs to: its DICOM PatientID is that Patient's identifier, so the
   * worker's chart cross-check accepts it for that patient (and holds it for any other). */
  patientId: string;
  accessionNumber: string;
  studyInstanceUid: string;
  expectedVbmdMgCm3: number;
  dir: string;
}

const DEMO_SEED = 4242;
/** The demo patient whose order the banner's `vbmd hook order-sign` example signs. */
const DEMO_PATIENT = DEMO_PATIENT_IDS.stableNormal;
const DEMO_VBMD = { T11: 70, T12: 68, L1: 66, L2: 64, L3: 63 } as const;

export async function ensureDemoStudies(folder: string): Promise<DemoStudy[]> {
  const manifest = join(folder, 'demo-studies.json');
  if (existsSync(manifest)) {
    const known = JSON.parse(readFileSync(manifest, 'utf8')) as DemoStudy[];
    // Studies written before they carried the demo patient's id would now be held for review: rewrite them.
    if (known.every((s) => s.patientId === DEMO_PATIENT)) return known;
  }
  const t0 = Date.now();
  const phantom = generatePhantom({ seed: DEMO_SEED, levels: 'T11-L3', vbmdMgCm3: { ...DEMO_VBMD }, size: 256, sliceThicknessMm: 1.5, kvp: 120 });
  // Acquired "today", so the demo result is the newest on the chart when the sandbox starts.
  phantom.loaded.meta.acquisitionDateTime = new Date().toISOString().slice(0, 19);
  phantom.loaded.meta.patientId = DEMO_PATIENT;
  const dir = join(folder, 'demo-osteoporotic');
  await writePhantom(dir, phantom);
  const meta = phantom.loaded.meta;
  const studies: DemoStudy[] = [
    {
      patientId: DEMO_PATIENT,
      accessionNumber: meta.accessionNumber ?? '',
      studyInstanceUid: meta.studyInstanceUid ?? '',
      expectedVbmdMgCm3: (DEMO_VBMD.L1 + DEMO_VBMD.L2) / 2,
      dir,
    },
  ];
  writeFileSync(manifest, `${JSON.stringify(studies, null, 2)}\n`);
  log.info({ ms: Date.now() - t0, dir }, 'demo CT study generated');
  return studies;
}
