import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCtSeries, type CtSeriesMeta } from '../../src/dicom/write-series.js';
import type { Vec3, Volume } from '../../src/imaging/volume.js';

/** HU that differ per voxel and axis, so any transposition or reordering shows up. */
export function huAt(i: number, j: number, k: number): number {
  return -900 + ((i * 7 + j * 13 + k * 29) % 1900);
}

export function syntheticVolume(
  dims: Vec3 = [64, 64, 20],
  spacingMm: Vec3 = [0.7, 0.7, 1],
  originMm: Vec3 = [-22.4, -30, -100],
  direction: Volume['direction'] = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ],
): Volume {
  const [nx, ny, nz] = dims;
  const hu = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) hu[i + nx * (j + ny * k)] = huAt(i, j, k);
  return { hu, dims, spacingMm, originMm, direction };
}

export async function writeSeries(dir: string, meta: Partial<CtSeriesMeta> = {}, volume: Volume = syntheticVolume()): Promise<string[]> {
  return writeCtSeries(dir, volume, { patientId: 'SYN-1', accessionNumber: 'ACC-1', acquisitionDateTime: '2024-05-06T07:08:09', kvp: 120, ...meta });
}

export async function tempDir(name: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `vbmd-${name}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
