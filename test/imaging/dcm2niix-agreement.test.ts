import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { readNiftiFile } from '../../src/imaging/nifti.js';
import { patientMmToVoxel, voxelToPatientMm, type Vec3 } from '../../src/imaging/volume.js';
import { syntheticVolume, tempDir, writeSeries } from '../dicom/synthetic-series.js';

/**
 * An independent reader agrees with ours: Debian's dcm2niix converts the same files to NIfTI, which the
 * project's NIfTI reader brings back to LPS. Every sampled voxel must sit at the same patient position
 * with the same HU in both volumes, whatever voxel order each tool chose.
 */
let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('dcm2niix'));
});
afterAll(async () => {
  await cleanup();
});

const CASES: { name: string; direction: [Vec3, Vec3, Vec3] }[] = [
  { name: 'axial head-first', direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] },
  { name: 'axial feet-first', direction: [[1, 0, 0], [0, 1, 0], [0, 0, -1]] },
  { name: 'rotated in plane', direction: [[0.8, 0.6, 0], [-0.6, 0.8, 0], [0, 0, 1]] },
];

describe('agreement with dcm2niix', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const dir = join(root, c.name.replace(/ /g, '-'));
      const vol = syntheticVolume([40, 30, 12], [0.8, 0.9, 1.5], [-15, 22, -60], c.direction);
      await writeSeries(join(dir, 'dicom'), {}, vol);
      const r = spawnSync('/usr/bin/dcm2niix', ['-z', 'n', '-f', 'out', '-o', dir, join(dir, 'dicom')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const nii = (await readdir(dir)).find((f) => f.endsWith('.nii'));
      expect(nii).toBeDefined();
      const theirs = (await readNiftiFile(join(dir, nii!))).volume;
      const ours = (await loadInputPath(join(dir, 'dicom'))).volume;
      expect([...theirs.dims].sort()).toEqual([...ours.dims].sort());
      let checked = 0;
      for (let k = 0; k < 12; k += 3)
        for (let j = 0; j < 30; j += 7)
          for (let i = 0; i < 40; i += 9) {
            const p = voxelToPatientMm(ours, i, j, k);
            const q = patientMmToVoxel(theirs, p);
            const [a, b, d] = q.map((x) => Math.round(x));
            for (const [x, y] of [[q[0], a], [q[1], b], [q[2], d]]) expect(Math.abs(x - y)).toBeLessThan(0.01);
            expect(theirs.hu[a + theirs.dims[0] * (b + theirs.dims[1] * d)]).toBe(ours.hu[i + 40 * (j + 30 * k)]);
            checked++;
          }
      expect(checked).toBe(4 * 5 * 5);
    });
  }
});
