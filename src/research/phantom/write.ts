import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeCtSeries } from '../../dicom/write-series.js';
import type { Phantom } from './types.js';

export interface WrittenPhantom {
  /** Folder holding the DICOM series (one Part-10 file per slice). */
  dicomDir: string;
  truthPath: string;
  files: string[];
}

/**
 * Writes a phantom as `DIR/dicom/CT0001.dcm ...` (CT Image Storage, int16, rescale -1024) and
 * `DIR/truth.json` (vbmd.phantom-truth/1). `vbmd analyze DIR` reads the series and ignores the JSON.
 */
export async function writePhantom(dir: string, phantom: Phantom): Promise<WrittenPhantom> {
  const { volume, meta } = phantom.loaded;
  const dicomDir = join(dir, 'dicom');
  await mkdir(dicomDir, { recursive: true });
  const files = await writeCtSeries(dicomDir, volume, {
    patientId: meta.patientId ?? `PHANTOM-${phantom.truth.seed}`,
    patientName: `PHANTOM^${phantom.truth.seed}`,
    studyInstanceUid: meta.studyInstanceUid,
    seriesInstanceUid: meta.seriesInstanceUid,
    accessionNumber: meta.accessionNumber,
    studyDescription: 'CT CHEST ABDOMEN (synthetic phantom)',
    seriesDescription: meta.seriesDescription,
    acquisitionDateTime: meta.acquisitionDateTime,
    manufacturer: meta.manufacturer,
    manufacturerModelName: meta.manufacturerModelName,
    institutionName: 'vbmd phantom generator',
    kvp: meta.kvp,
    sliceThicknessMm: phantom.truth.volume.sliceThicknessMm,
    contrastAgent: meta.contrastAgent,
    convolutionKernel: 'STANDARD',
    bodyPartExamined: 'CHEST',
  });
  const truthPath = join(dir, 'truth.json');
  await writeFile(truthPath, `${JSON.stringify(phantom.truth, null, 2)}\n`);
  return { dicomDir, truthPath, files };
}
