import { describe, expect, it } from 'vitest';
import { PADDING_HU, patientMmToVoxel, voxelToPatientMm, type Vec3, type Volume } from '../../src/imaging/volume.js';
import { brightenAorta } from '../../src/research/evaluation/aorta-contrast.js';
import {
  addGaussianNoise,
  axisRotation,
  clipHu,
  cropMm,
  moveBack,
  moveForward,
  movePatient,
  multiply,
  thickenSlices,
  type PatientMotion,
} from '../../src/research/evaluation/volume-edits.js';

/** A volume whose every voxel holds f(its LPS position). */
function volumeOf(dims: Vec3, spacingMm: Vec3, originMm: Vec3, direction: Volume['direction'], f: (p: Vec3) => number, int16 = false): Volume {
  const n = dims[0] * dims[1] * dims[2];
  const hu = int16 ? new Int16Array(n) : new Float32Array(n);
  const v: Volume = { hu, dims, spacingMm, originMm, direction };
  for (let k = 0, m = 0; k < dims[2]; k++) for (let j = 0; j < dims[1]; j++) for (let i = 0; i < dims[0]; i++, m++) hu[m] = f(voxelToPatientMm(v, i, j, k));
  return v;
}

const AXIAL: Volume['direction'] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
// NIfTI-like (RAS stored, seen in LPS): i and j run towards patient right and anterior.
const FLIPPED: Volume['direction'] = [[-1, 0, 0], [0, -1, 0], [0, 0, 1]];
const code = (p: Vec3): number => Math.round(p[0]) * 10000 + Math.round(p[1]) * 100 + Math.round(p[2]);

describe('volume edits keep patient coordinates', () => {
  it.each([
    ['axial', AXIAL, [-10, -12, 100]],
    ['flipped', FLIPPED, [10, 5, 100]],
  ] as const)('cropMm (%s) keeps the voxels inside the box, each at its old position', (_name, dir, origin) => {
    const v = volumeOf([20, 18, 16], [1, 1, 2], [...origin], dir, code);
    const c = cropMm(v, { minMm: [-5, undefined, 110], maxMm: [3, -3, 121] });
    for (let k = 0; k < c.dims[2]; k++) {
      for (let j = 0; j < c.dims[1]; j++) {
        for (let i = 0; i < c.dims[0]; i++) {
          const p = voxelToPatientMm(c, i, j, k);
          expect(c.hu[i + c.dims[0] * (j + c.dims[1] * k)]).toBe(code(p));
          expect(p[0]).toBeGreaterThanOrEqual(-5);
          expect(p[0]).toBeLessThanOrEqual(3);
          expect(p[1]).toBeLessThanOrEqual(-3);
          expect(p[2]).toBeGreaterThanOrEqual(110);
          expect(p[2]).toBeLessThanOrEqual(121);
        }
      }
    }
    // Every voxel of the original inside the box is kept: x -5..3 (9), y -12..-3 (10), z 110..120 (6 slices at 2 mm).
    expect(c.dims).toEqual([9, 10, 6]);
  });

  it.each([
    [5, 10, 10],
    [3, 6, 17],
  ])('thickenSlices: 2 mm to %i mm slabs from the first slice edge, each at its centre, holding the mean over its span', (mm, blockMm, slabs) => {
    // Values constant over blocks whose edges are both slice and slab edges: a slab on the wrong span mixes blocks.
    const edge0 = -21.5;
    const block = (z: number): number => 100 * Math.floor((z - edge0) / blockMm + 1e-9);
    const v = volumeOf([3, 2, 26], [1, 1, 2], [0, 0, edge0 + 1], AXIAL, (p) => block(p[2]));
    const t = thickenSlices(v, mm);
    expect(t.dims[2]).toBe(slabs); // 52 mm of slices, the remainder thinner than a slab dropped
    expect(t.spacingMm[2]).toBe(mm);
    expect(t.originMm).toEqual([0, 0, edge0 + mm / 2]);
    for (let k = 0; k < slabs; k++) expect(t.hu[6 * k]).toBeCloseTo(block(voxelToPatientMm(t, 0, 0, k)[2]), 4);
  });

  it('thickenSlices keeps int16 storage, rounded', () => {
    const v = volumeOf([2, 2, 6], [1, 1, 2], [0, 0, 0], AXIAL, (p) => (p[2] === 0 ? 101 : 100), true);
    const t = thickenSlices(v, 4);
    expect(t.hu).toBeInstanceOf(Int16Array);
    expect(Array.from(t.hu.subarray(0, 4))).toEqual([101, 101, 101, 101]); // (101 + 100) / 2 rounds up
  });

  it('addGaussianNoise: seeded, SD as asked, mean unchanged, padding left alone', () => {
    const v = volumeOf([100, 100, 10], [1, 1, 1], [0, 0, 0], AXIAL, (p) => (p[0] === 0 ? PADDING_HU : 40));
    const a = addGaussianNoise(v, 25, 7);
    expect(Array.from(addGaussianNoise(v, 25, 7).hu)).toEqual(Array.from(a.hu));
    expect(Array.from(addGaussianNoise(v, 25, 8).hu.subarray(0, 50))).not.toEqual(Array.from(a.hu.subarray(0, 50)));
    const d: number[] = [];
    for (let n = 0; n < a.hu.length; n++) {
      if (v.hu[n] === PADDING_HU) expect(a.hu[n]).toBe(PADDING_HU);
      else d.push(a.hu[n] - 40);
    }
    const mean = d.reduce((s, x) => s + x, 0) / d.length;
    const sd = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / d.length);
    expect(Math.abs(mean)).toBeLessThan(0.5);
    expect(sd).toBeGreaterThan(24.5);
    expect(sd).toBeLessThan(25.5);
  });

  it('clipHu caps values and leaves the rest', () => {
    const v = volumeOf([4, 1, 1], [1, 1, 1], [0, 0, 0], AXIAL, (p) => [500, 1023, 1500, 3000][p[0]], true);
    expect(Array.from(clipHu(v, 1023).hu)).toEqual([500, 1023, 1023, 1023]);
  });

  it('movePatient: a marker moves where the motion sends it, and back maps it home', () => {
    const marker: Vec3 = [12, -8, 30];
    const v = volumeOf([60, 60, 40], [1, 1, 2], [-30, -30, 0], AXIAL, (p) => (Math.hypot(p[0] - marker[0], p[1] - marker[1], p[2] - marker[2]) < 3 ? 1000 : 0));
    const m: PatientMotion = { rotation: multiply(axisRotation(2, 5), axisRotation(0, 6)), centreMm: [0, 0, 40] };
    const moved = movePatient(v, m, 20);
    let best = -1;
    let at: Vec3 = [0, 0, 0];
    for (let k = 0, n = 0; k < moved.dims[2]; k++) {
      for (let j = 0; j < moved.dims[1]; j++) {
        for (let i = 0; i < moved.dims[0]; i++, n++) {
          if (moved.hu[n] > best) [best, at] = [moved.hu[n], voxelToPatientMm(moved, i, j, k)];
        }
      }
    }
    const expected = moveForward(m, marker);
    expect(Math.hypot(at[0] - expected[0], at[1] - expected[1], at[2] - expected[2])).toBeLessThan(1.5);
    const back = moveBack(m, expected);
    back.forEach((c, a) => expect(c).toBeCloseTo(marker[a], 9));
    // The result stays on the original's grid (axis-aligned, same spacing); slices were only trimmed.
    expect(moved.direction).toEqual(v.direction);
    expect(patientMmToVoxel(v, moved.originMm)[2] % 1).toBeCloseTo(0, 9);
  });
});

describe('aorta contrast', () => {
  it('raises a round soft-tissue tube anterior-left of the spine, and nothing else', () => {
    // Fat body, a bone "spine" at (0, 40), a 24 mm blood tube at (15, 10) running along z, a soft blob at right.
    const v = volumeOf([120, 120, 20], [1, 1, 2], [-60, -60, 0], AXIAL, (p) => {
      if (Math.hypot(p[0], p[1] - 40) < 15) return 300;
      if (Math.hypot(p[0] - 15, p[1] - 10) < 12) return 40;
      if (Math.hypot(p[0] + 35, p[1] - 5) < 10) return 40;
      return -100;
    });
    const spine: Vec3[] = [[0, 40, 0], [0, 40, 38]];
    const r = brightenAorta(v, spine);
    expect(r.slicesRaised).toBe(20);
    const at = (x: number, y: number, z: number): number => {
      const [i, j, k] = patientMmToVoxel(v, [x, y, z]).map(Math.round);
      return r.volume.hu[i + 120 * (j + 120 * k)];
    };
    expect(at(15, 10, 20)).toBe(290);
    expect(at(-35, 5, 20)).toBe(40); // the blob right of the spine stays
    expect(at(0, 40, 20)).toBe(300);
    expect(at(15, -5, 20)).toBe(-100);
  });
});
