import { describe, expect, it } from 'vitest';
import { REPORT_SCHEMA, type VbmdReport, type VertebraLevel } from '../../src/bmd/report.js';
import type { LoadedVolume, Vec3, Volume } from '../../src/imaging/volume.js';
import { maskReference, readerReference } from '../../src/research/evaluation/real-reference.js';
import { acceptanceFailures, scoreReport } from '../../src/research/evaluation/real-score.js';
import { applyVariant, zCropStep, type RealVariant } from '../../src/research/evaluation/real-variants.js';

// A reader reference like philips-chest-ct's: bodies 20 mm apart, 14 mm tall, on a straight column at (0, 100).
const LEVELS: VertebraLevel[] = ['C7', 'T1', 'T2', 'T3', 'T4'];
const reader = readerReference({
  case: 'synthetic',
  levels: LEVELS.map((level, n) => ({
    level,
    center_lps_mm: [0, 100, 80 - 20 * n],
    sup_z: 87 - 20 * n,
    inf_z: 73 - 20 * n,
    full: n > 0 && n < 4,
  })),
});

// 200 x 200 mm at 2 mm, z 0..90 at 2 mm: C7 is cut at the top, T4 at the bottom.
const grid: Volume = { hu: new Int16Array(100 * 100 * 46), dims: [100, 100, 46], spacingMm: [2, 2, 2], originMm: [-100, 0, 0], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] };
const loaded: LoadedVolume = { volume: grid, meta: { kind: 'nifti', source: 'synthetic' } };

function report(levels: [VertebraLevel, Vec3, number][]): VbmdReport {
  return {
    schema: REPORT_SCHEMA,
    input: { kind: 'nifti', dims: grid.dims, spacingMm: grid.spacingMm, contrast: false },
    levels: levels.map(([level, centerMm, labelConfidence]) => ({
      level,
      labelConfidence,
      centerMm,
      roiHuMedian: 150,
      roiHuMean: 150,
      roiVoxels: 100,
      vbmd: 150,
      included: true,
      exclusionReason: null,
    })),
    summary: { vbmd: 150, levels: [], basis: 'thoracic-extrapolated', category: 'normal' },
    calibration: { method: 'nominal', slope: 1, intercept: 0, references: {} },
    qc: { warnings: [] },
    timingsMs: {},
  };
}

const variant = (steps: RealVariant['steps']): RealVariant => ({ name: 'synthetic/x', caseName: 'philips-chest-ct', description: 'test', steps });

describe('reader reference', () => {
  it('holds a point inside a body within its endplates (with 2 mm slack) and 12 mm of the centre line', () => {
    expect(reader.bodyAt([0, 100, 60])).toEqual({ level: 'T1', depthMm: 7 });
    expect(reader.bodyAt([11, 100, 60])?.level).toBe('T1');
    expect(reader.bodyAt([13, 100, 60])).toBeNull();
    expect(reader.bodyAt([0, 100, 51.5])).toEqual({ level: 'T1', depthMm: -1.5 }); // below its inferior endplate, in the slack
    expect(reader.bodyAt([0, 100, 50])).toBeNull(); // mid-disc: 3 mm from both endplates
  });
});

describe('mask reference', () => {
  it('takes bodies from labels, depth from the nearest other voxel, and marks bodies touching the border as partial', () => {
    const mask: Volume = { hu: new Float32Array(10 * 10 * 10), dims: [10, 10, 10], spacingMm: [3, 3, 3], originMm: [0, 0, 0], direction: grid.direction };
    for (let k = 0; k < 10; k++) for (let j = 2; j < 8; j++) for (let i = 2; i < 8; i++) mask.hu[i + 10 * (j + 10 * k)] = k < 5 ? 20 : 21;
    const ref = maskReference('m', [{ mask, bodies: true, levels: { 20: 'L2', 21: 'L1' } }]);
    expect(ref.levels.map((l) => [l.level, l.full])).toEqual([
      ['L1', false],
      ['L2', false],
    ]);
    const hit = ref.bodyAt([12, 12, 6]);
    expect(hit?.level).toBe('L2');
    // Voxel (4, 4, 2): L1 starts 3 slices up, the volume ends 3 slices down, the side is 3 voxels away: 9 mm.
    expect(hit?.depthMm).toBeCloseTo(9, 6);
    expect(ref.bodyAt([0, 0, 6])).toBeNull();
  });
});

describe('scoring a report against the reference', () => {
  const view = applyVariant(variant([]), loaded, reader);

  it('covers only the full bodies wholly inside, and sees the first rib anchor with C7 above T1', () => {
    expect(view.covered).toEqual(['T1', 'T2', 'T3']);
    expect(view.anchors).toEqual(['first-rib']);
  });

  it('a right report passes; a confident wrong name, a skipped body and a split body each fail', () => {
    const right = scoreReport(report([['T1', [0, 100, 60], 0.9], ['T2', [0, 100, 40], 0.9], ['T3', [0, 100, 20], 0.9]]), reader, view, 1);
    expect([right.found, right.right, right.wrong, right.skipped]).toEqual([3, 3, 0, []]);
    expect(acceptanceFailures(right)).toEqual([]);
    expect(acceptanceFailures(right, { minConfidence: 0.95, summaryBasis: 'thoracic-extrapolated' })).toHaveLength(3);

    const bad = scoreReport(report([['T2', [0, 100, 60], 0.85], ['T3', [0, 100, 42], 0.5], ['T4', [0, 100, 38], 0.5], ['T5', [40, 100, 20], 0.9]]), reader, view, 1);
    expect(bad.wrongConfident).toEqual(['T1 called T2 @0.85']);
    expect(bad.skipped).toEqual(['T3']);
    expect(bad.split).toEqual(['T2']);
    expect(bad.outside).toBe(1);
    const f = acceptanceFailures(bad);
    expect(f.some((x) => x.includes('named wrongly'))).toBe(true);
    expect(f.some((x) => x.includes('not reported: T3'))).toBe(true);
    expect(f.some((x) => x.includes('more than once: T2'))).toBe(true);
    expect(f.some((x) => x.includes('not named right: T1, T2, T3'))).toBe(true);
  });

  it('without an anchor in view, any label at >= 0.8 fails even when it happens to be right', () => {
    const crop = applyVariant(variant([zCropStep('T2', 'T3')]), loaded, reader);
    expect(crop.covered).toEqual(['T2', 'T3']);
    expect(crop.anchors).toEqual([]);
    const guess = scoreReport(report([['T2', [0, 100, 40], 0.9], ['T3', [0, 100, 20], 0.3]]), reader, crop, 1);
    expect(acceptanceFailures(guess)).toEqual(['no naming anchor in view, yet a label has confidence 0.90 (>= 0.8)']);
    const humble = scoreReport(report([['T5', [0, 100, 40], 0.3], ['T6', [0, 100, 20], 0.3]]), reader, crop, 1);
    expect(acceptanceFailures(humble)).toEqual([]);
  });
});
