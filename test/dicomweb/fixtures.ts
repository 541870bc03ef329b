import { readFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newDicomUid, writeCtSeries, type CtSeriesMeta } from '../../src/dicom/write-series.js';
import type { Vec3, Volume } from '../../src/imaging/volume.js';

/**
 * Small synthetic CT series for the DICOMweb tests: a deterministic HU pattern (so two loads can be
 * compared voxel by voxel), written with writeCtSeries as Part-10 files.
 */
export function patternVolume(dims: Vec3, sliceSpacingMm: number, seed: number): Volume {
  const [nx, ny, nz] = dims;
  const hu = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        // Smooth body + fine texture: exercises predictors of the lossless codecs.
        const r = Math.hypot(i - nx / 2, j - ny / 2);
        const body = r < nx * 0.4 ? 40 : -1000;
        const bone = r < nx * 0.1 ? 300 + ((i * 7 + j * 13 + k * 29 + seed) % 97) * 5 : 0;
        hu[i + nx * (j + ny * k)] = body + bone + ((i + 3 * j + 5 * k + seed) % 11);
      }
    }
  }
  return {
    hu,
    dims,
    spacingMm: [0.8, 0.8, sliceSpacingMm],
    originMm: [-(nx * 0.8) / 2, -(ny * 0.8) / 2, -100],
    direction: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
  };
}

export interface WrittenSeries {
  dir: string;
  files: string[];
  studyInstanceUid: string;
  seriesInstanceUid: string;
  volume: Volume;
}

export async function writeSeries(
  root: string,
  name: string,
  volume: Volume,
  meta: CtSeriesMeta & { studyInstanceUid: string },
): Promise<WrittenSeries> {
  const seriesInstanceUid = meta.seriesInstanceUid ?? newDicomUid();
  const dir = join(root, name);
  const files = await writeCtSeries(dir, volume, { ...meta, seriesInstanceUid });
  return { dir, files, studyInstanceUid: meta.studyInstanceUid, seriesInstanceUid, volume };
}

export async function readAll(files: string[]): Promise<Buffer[]> {
  return Promise.all(files.map((f) => readFile(f)));
}

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `vbmd-${prefix}-`));
}
