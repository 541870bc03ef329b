import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeVolume } from '../../src/bmd/analyze.js';
import { vbmdReport } from '../../src/bmd/report.js';
import { readNiftiFile } from '../../src/imaging/nifti.js';
import { patientMmToVoxel, type Vec3 } from '../../src/imaging/volume.js';
import { TOTALSEG_DIR, totalsegAvailable } from '../support/shared-data.js';

// TotalSegmentator example (../shared): reference body labels 19 T12, 20 L1 ... 24 L5; reference medians
// of the 4 mm-eroded bodies from its spine_report.json.
const LABEL: Record<string, number> = { T12: 19, L1: 20, L2: 21, L3: 22, L4: 23, L5: 24 };
const REF_MEDIAN_HU: Record<string, number> = { L1: 110, L2: 122, L3: 120, L4: 124, L5: 129 };

describe.skipIf(!totalsegAvailable())('real CT (TotalSegmentator example, 3 mm)', () => {
  it('finds T12-L5 with the right labels, each centre well inside its reference body, ROI medians within 20 HU', async () => {
    const ct = await readNiftiFile(resolve(TOTALSEG_DIR, 'example_ct.nii.gz'));
    const seg = (await readNiftiFile(resolve(TOTALSEG_DIR, 'vertebral_bodies.nii.gz'))).volume;
    const report = vbmdReport.parse(analyzeVolume(ct));
    expect(report.levels.map((l) => l.level)).toEqual(['T12', 'L1', 'L2', 'L3', 'L4', 'L5']);
    const [nx, ny, nz] = seg.dims;
    const labelAt = (c: Vec3): number => {
      const [i, j, k] = patientMmToVoxel(seg, c).map(Math.round);
      return seg.hu[i + nx * (j + ny * k)];
    };
    // Distance (mm) from a centre to the nearest reference voxel centre NOT of the given label: how far inside.
    const depthInsideMm = (c: Vec3, label: number): number => {
      const v = patientMmToVoxel(seg, c);
      let best = Infinity;
      for (let k = Math.floor(v[2]) - 5; k <= Math.ceil(v[2]) + 5; k++) {
        for (let j = Math.floor(v[1]) - 5; j <= Math.ceil(v[1]) + 5; j++) {
          for (let i = Math.floor(v[0]) - 5; i <= Math.ceil(v[0]) + 5; i++) {
            const inside = i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz && seg.hu[i + nx * (j + ny * k)] === label;
            if (inside) continue;
            best = Math.min(best, Math.hypot((i - v[0]) * seg.spacingMm[0], (j - v[1]) * seg.spacingMm[1], (k - v[2]) * seg.spacingMm[2]));
          }
        }
      }
      return best;
    };
    for (const l of report.levels) {
      // Both anchors are in view (T12 = last rib-bearing level, L5 = last level above the sacral ala) and agree.
      expect(l.labelConfidence).toBeGreaterThanOrEqual(0.85);
      expect(labelAt(l.centerMm as Vec3), `${l.level} centre`).toBe(LABEL[l.level]);
      // With margin: at least two 3 mm voxels inside the reference body (L5 over the sacral slope included).
      expect(depthInsideMm(l.centerMm as Vec3, LABEL[l.level]), `${l.level} centre depth inside its body`).toBeGreaterThanOrEqual(6);
      if (REF_MEDIAN_HU[l.level] !== undefined) {
        expect(Math.abs((l.roiHuMedian as number) - REF_MEDIAN_HU[l.level]), `${l.level} median`).toBeLessThanOrEqual(20);
      }
    }
    // T12 touches the top of the scan: not fully covered, so not used.
    expect(report.levels[0].exclusionReason).toBe('partial-coverage');
    expect(report.summary.basis).toBe('lumbar');
    expect(report.input.contrast).toBe(false);
  });
});
