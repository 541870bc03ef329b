import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePhantom, writePhantom } from '../phantom/index.js';
import { log } from '../util/log.js';

/**
 * The sandbox's demo CT: one synthetic chest/abdomen study (the phantom generator, issue 2) with
 * osteoporotic lumbar vBMD, written once into the sandbox DICOM folder. Its accession number is what
 * `vbmd hook order-sign --accession` uses to show the whole flow: order -> watch -> study found -> analysis
 * -> FHIR -> patient-view card.
 */
export interface DemoStudy {
  accessionNumber: string;
  studyInstanceUid: string;
  expectedVbmdMgCm3: number;
  dir: string;
}

const DEMO_SEED = 4242;
const DEMO_VBMD = { T11: 70, T12: 68, L1: 66, L2: 64, L3: 63 } as const;

export async function ensureDemoStudies(folder: string): Promise<DemoStudy[]> {
  const manifest = join(folder, 'demo-studies.json');
  if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, 'utf8')) as DemoStudy[];
  const t0 = Date.now();
  const phantom = generatePhantom({ seed: DEMO_SEED, levels: 'T11-L3', vbmdMgCm3: { ...DEMO_VBMD }, size: 256, sliceThicknessMm: 1.5, kvp: 120 });
  // Acquired "today", so the demo result is the newest on the chart when the sandbox starts.
  phantom.loaded.meta.acquisitionDateTime = new Date().toISOString().slice(0, 19);
  const dir = join(folder, 'demo-osteoporotic');
  await writePhantom(dir, phantom);
  const meta = phantom.loaded.meta;
  const studies: DemoStudy[] = [
    {
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
