import { describe, expect, it } from 'vitest';
import { PADDING_HU, voxelToPatientMm, type Vec3, type Volume } from '../../src/imaging/volume.js';
import { INPUT_CLIP_MG_CM3, INPUT_SCALE_MG_CM3, PATCH_SPACING_MM, PATCH_VOXELS } from '../../src/model/contract.js';
import { densityToNetworkInput, extractDensityPatch, maskedMeanDensity, patchVoxelCentreMm } from '../../src/model/patch.js';

const N = PATCH_VOXELS;
const idx = (d: number, h: number, w: number): number => d * N * N + h * N + w;

/** A volume whose HU at every voxel centre is f(LPS position); trilinear reproduces linear f exactly. */
function volumeFrom(dims: Vec3, spacingMm: Vec3, originMm: Vec3, direction: [Vec3, Vec3, Vec3], f: (p: Vec3) => number): Volume {
  const v: Volume = { hu: new Float32Array(dims[0] * dims[1] * dims[2]), dims, spacingMm, originMm, direction };
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) (v.hu as Float32Array)[i + dims[0] * (j + dims[1] * k)] = f(voxelToPatientMm(v, i, j, k));
  return v;
}

const ID: [Vec3, Vec3, Vec3] = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];
const cal = { slope: 1.2, intercept: 10 };

describe('extractDensityPatch', () => {
  it('gives (HU - intercept) / slope everywhere on a constant volume', () => {
    const v = volumeFrom([80, 80, 60], [1, 1, 1.25], [-40, -40, -37], ID, () => 250);
    const p = extractDensityPatch(v, [0, 0, 0], cal);
    expect(p.length).toBe(N * N * N);
    for (const x of [p[0], p[idx(5, 17, 30)], p[p.length - 1]]) expect(x).toBeCloseTo((250 - 10) / 1.2, 4);
  });

  it('orders axes D=+S, H=+P, W=+L with the contract spacing', () => {
    const c: Vec3 = [3.3, -2.1, 5.7];
    for (const axis of [0, 1, 2] as const) {
      const v = volumeFrom([90, 90, 70], [0.8, 0.8, 1.0], [-36, -36, -30], ID, (p) => 100 + 10 * p[axis]);
      const p = extractDensityPatch(v, c, cal);
      const half = (N - 1) / 2;
      // Along the matching patch axis the density rises by 10*spacing/slope per voxel; along the others it is flat.
      const along = (dd: number, hh: number, ww: number): number => p[idx(10 + dd, 10 + hh, 10 + ww)] - p[idx(10, 10, 10)];
      const steps = [along(0, 0, 1), along(0, 1, 0), along(1, 0, 0)]; // +L, +P, +S
      for (let a = 0; a < 3; a++) expect(steps[a]).toBeCloseTo(a === axis ? (10 * PATCH_SPACING_MM) / 1.2 : 0, 3);
      const expected0 = (100 + 10 * (c[axis] - half * PATCH_SPACING_MM) - 10) / 1.2;
      expect(p[0]).toBeCloseTo(expected0, 2);
    }
  });

  it('gives the same patch for a flipped and an oblique direction matrix', () => {
    const f = (p: Vec3): number => 50 + 3 * p[0] - 2 * p[1] + 5 * p[2];
    const c: Vec3 = [1, 2, -3];
    const ref = extractDensityPatch(volumeFrom([100, 100, 90], [1, 1, 1], [-50, -50, -45], ID, f), c, cal);
    // Flipped: i runs right (-L), j anterior (-P), k inferior (-S); origin at the far corner.
    const flipped = volumeFrom(
      [100, 100, 90],
      [1, 1, 1],
      [49, 49, 44],
      [
        [-1, 0, 0],
        [0, -1, 0],
        [0, 0, -1],
      ],
      f,
    );
    // Oblique: rotated 30 degrees about S and 20 degrees about L; big enough to contain the patch.
    const a = Math.PI / 6;
    const b = Math.PI / 9;
    const r0: Vec3 = [Math.cos(a), Math.sin(a), 0];
    const r1: Vec3 = [-Math.sin(a) * Math.cos(b), Math.cos(a) * Math.cos(b), Math.sin(b)];
    const r2: Vec3 = [Math.sin(a) * Math.sin(b), -Math.cos(a) * Math.sin(b), Math.cos(b)];
    const oblique = volumeFrom([120, 120, 120], [0.9, 0.9, 0.9], [0, 0, 0], [r0, r1, r2], f);
    // Put the oblique volume's centre on c.
    const mid = voxelToPatientMm(oblique, 59.5, 59.5, 59.5);
    const shifted: Volume = { ...oblique, originMm: [c[0] - mid[0], c[1] - mid[1], c[2] - mid[2]] };
    const obliqueVol = volumeFrom(shifted.dims, shifted.spacingMm, shifted.originMm as Vec3, [r0, r1, r2], f);
    for (const vol of [flipped, obliqueVol]) {
      const p = extractDensityPatch(vol, c, cal);
      let maxErr = 0;
      for (let i = 0; i < p.length; i++) maxErr = Math.max(maxErr, Math.abs(p[i] - ref[i]));
      expect(maxErr).toBeLessThan(1e-2);
    }
    // And the values are the analytic ones at the contract's voxel centres.
    const q = patchVoxelCentreMm(c, 3, 20, 7);
    expect(ref[idx(3, 20, 7)]).toBeCloseTo((f(q) - 10) / 1.2, 2);
  });

  it('gives the padding density outside the volume and blends at the edge', () => {
    const v = volumeFrom([20, 20, 20], [1, 1, 1], [0, 0, 0], ID, () => 300);
    // Centre far away: every voxel is outside.
    const far = extractDensityPatch(v, [500, 500, 500], cal);
    const pad = (PADDING_HU - 10) / 1.2;
    expect(far[0]).toBeCloseTo(pad, 3);
    expect(far[far.length - 1]).toBeCloseTo(pad, 3);
    // Patch centred on the volume corner: the voxel whose centre is at (0,0,0)+... inside gets 300's density.
    const corner = extractDensityPatch(v, [0, 0, 0], cal);
    const half = (N - 1) / 2;
    // Voxel (d,h,w) = (half+0.5+k): centre at (k+0.5)*1.5 mm... pick one well inside: w=h=d=half+0.5+4 -> 6.75 mm.
    const inside = Math.ceil(half) + 4;
    expect(corner[idx(inside, inside, inside)]).toBeCloseTo((300 - 10) / 1.2, 3);
    // Centre 0.75 mm outside along every axis: weight (1-0.75)^3 on the corner voxel, the rest on padding.
    const outside = Math.floor(half);
    const w = 0.25 ** 3;
    expect(corner[idx(outside, outside, outside)]).toBeCloseTo((w * 300 + (1 - w) * PADDING_HU - 10) / 1.2, 3);
    // 2.25 mm outside: padding only.
    expect(corner[idx(outside - 1, outside - 1, outside - 1)]).toBeCloseTo(pad, 3);
  });

  it('reads int16 HU volumes (how DICOM volumes are held) like float32 ones', () => {
    const f = (p: Vec3): number => Math.round(40 + 2 * p[0] - p[1] + 3 * p[2]);
    const v32 = volumeFrom([60, 60, 50], [1, 1, 1], [-30, -30, -25], ID, f);
    const v16: Volume = { ...v32, hu: Int16Array.from(v32.hu) };
    const a = extractDensityPatch(v32, [0.3, -1.2, 2.5], cal);
    const b = extractDensityPatch(v16, [0.3, -1.2, 2.5], cal);
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('reuses a given buffer and rejects a bad calibration', () => {
    const v = volumeFrom([40, 40, 40], [1, 1, 1], [-20, -20, -20], ID, () => 0);
    const buf = new Float32Array(N * N * N);
    expect(extractDensityPatch(v, [0, 0, 0], cal, buf)).toBe(buf);
    expect(() => extractDensityPatch(v, [0, 0, 0], { slope: 0, intercept: 0 })).toThrow(/positive slope/);
  });
});

describe('densityToNetworkInput and maskedMeanDensity', () => {
  it('clips then scales as the contract says', () => {
    const d = new Float32Array([-1000, INPUT_CLIP_MG_CM3[0], 0, 150, INPUT_CLIP_MG_CM3[1], 5000]);
    const x = densityToNetworkInput(d);
    expect(Array.from(x)).toEqual(
      [INPUT_CLIP_MG_CM3[0], INPUT_CLIP_MG_CM3[0], 0, 150, INPUT_CLIP_MG_CM3[1], INPUT_CLIP_MG_CM3[1]].map((v) => Math.fround(v / INPUT_SCALE_MG_CM3)),
    );
  });
  it('averages the unclipped density over the mask, null when empty', () => {
    const d = new Float32Array([100, 2000, 50, -300]);
    expect(maskedMeanDensity(d, new Uint8Array([1, 1, 0, 0]))).toEqual({ meanMgCm3: 1050, voxels: 2 });
    expect(maskedMeanDensity(d, new Float32Array([0.2, 0.9, 0.6, 0.1]))?.meanMgCm3).toBeCloseTo(1025, 6);
    expect(maskedMeanDensity(d, new Uint8Array(4))).toBeNull();
  });
});
