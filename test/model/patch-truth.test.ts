import { describe, expect, it } from 'vitest';
import { generatePhantom } from '../../src/research/phantom/generate.js';
import { HELDOUT_SEED_BASE, TRAIN_SEED_BASE, modelCaseOptions } from '../../src/research/training-data/cases.js';
import { PATCH_VOXELS } from '../../src/model/contract.js';
import { extractDensityPatch, maskedMeanDensity, patchVoxelCentreMm } from '../../src/model/patch.js';
import { classIndexForVbmd, trabecularTruthMask } from '../../src/research/training-data/truth-mask.js';

const N = PATCH_VOXELS;
const centre = (N - 1) / 2;

describe('trabecular truth mask', () => {
  // Small, noiseless, fine-pixel phantom: 160 px at 1 mm (the torso is cut by the field; the spine is inside).
  const p = generatePhantom({ seed: 4242, levels: 'T12-L2', size: 160, pixelSpacingMm: 1, sliceThicknessMm: 1.5, noiseHu: 0, lesions: [{ level: 'L1', kind: 'blastic' }] });
  const cal = p.truth.calibration;

  it('marks the central trabecular bone and its mean density is the truth vBMD', () => {
    const t = p.truth.levels.find((l) => l.level === 'L2')!;
    const mask = trabecularTruthMask(p, 'L2', t.centerMm);
    const d = extractDensityPatch(p.loaded.volume, t.centerMm, cal);
    const m = maskedMeanDensity(d, mask)!;
    // A lumbar body interior is several cm3: thousands of 3.375 mm3 voxels, none at the patch border.
    expect(m.voxels).toBeGreaterThan(1000);
    expect(mask[Math.floor(centre) * N * N + Math.floor(centre) * N + Math.floor(centre)]).toBe(1);
    for (let h = 0; h < N; h++) for (let w = 0; w < N; w++) expect(mask[h * N + w]).toBe(0);
    // Texture is zero-mean and the margins keep cortex/endplate blur out: within 3 mg/cm3 of the truth.
    expect(Math.abs(m.meanMgCm3 - t.vbmdMgCm3)).toBeLessThan(3);
  });

  it('leaves the lesion (and its margin) out', () => {
    const t = p.truth.levels.find((l) => l.level === 'L1')!;
    const les = t.lesion!;
    const mask = trabecularTruthMask(p, 'L1', t.centerMm);
    let inLesion = 0;
    let total = 0;
    for (let d = 0; d < N; d++)
      for (let h = 0; h < N; h++)
        for (let w = 0; w < N; w++) {
          if (!mask[d * N * N + h * N + w]) continue;
          total++;
          const q = patchVoxelCentreMm(t.centerMm, d, h, w);
          if (Math.hypot(q[0] - les.centerMm[0], q[1] - les.centerMm[1], q[2] - les.centerMm[2]) < les.radiusMm + 2) inLesion++;
        }
    expect(total).toBeGreaterThan(100);
    expect(inLesion).toBe(0);
    const m = maskedMeanDensity(extractDensityPatch(p.loaded.volume, t.centerMm, cal), mask)!;
    // The blastic focus is hundreds of mg/cm3 denser; outside it the mean stays near the truth.
    expect(Math.abs(m.meanMgCm3 - t.vbmdMgCm3)).toBeLessThan(5);
  });

  it('needs the in-memory anatomy', () => {
    expect(() => trabecularTruthMask({ loaded: p.loaded, truth: p.truth }, 'L1', [0, 0, 0])).toThrow(/anatomy/);
  });
});

describe('model cases and classes', () => {
  it('uses the ACR cut-offs (< 80 osteoporosis, 80-120 osteopenia, > 120 normal) in CLASS_ORDER', () => {
    expect([classIndexForVbmd(79.9), classIndexForVbmd(80), classIndexForVbmd(120), classIndexForVbmd(120.1)]).toEqual([2, 1, 1, 0]);
  });
  it('draws the same case for a seed and keeps training and held-out seeds apart', () => {
    expect(modelCaseOptions(TRAIN_SEED_BASE + 7)).toEqual(modelCaseOptions(TRAIN_SEED_BASE + 7));
    expect(HELDOUT_SEED_BASE).toBeGreaterThan(TRAIN_SEED_BASE);
    const sizes = new Set<number>();
    let lesions = 0;
    let coarse = 0;
    for (let s = HELDOUT_SEED_BASE; s < HELDOUT_SEED_BASE + 200; s++) {
      const c = modelCaseOptions(s).options;
      sizes.add(c.size!);
      if (c.lesions?.length) lesions++;
      // Clinical pixels (0.7-1.05 mm), or a coarse volume of 2.5-3 mm voxels with slices as thick.
      if (c.size === 128) {
        coarse++;
        expect(c.pixelSpacingMm!).toBeGreaterThanOrEqual(2.5);
        expect(c.pixelSpacingMm!).toBeLessThanOrEqual(3);
        expect([2.5, 3]).toContain(c.sliceThicknessMm);
      } else {
        expect(c.pixelSpacingMm!).toBeGreaterThanOrEqual(0.7);
        expect(c.pixelSpacingMm!).toBeLessThanOrEqual(1.05);
      }
    }
    expect(sizes.size).toBe(4);
    expect(coarse).toBeGreaterThan(15);
    expect(coarse).toBeLessThan(50);
    expect(lesions).toBeGreaterThan(60);
  });
});
