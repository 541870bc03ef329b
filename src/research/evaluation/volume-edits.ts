import { PADDING_HU, patientMmToVoxel, voxelToPatientMm, type HuArray, type Vec3, type Volume } from '../../imaging/volume.js';
import { blendCell } from '../../imaging/trilinear.js';
import { mulberry32 } from '../../util/prng.js';
import { VbmdError } from '../../util/errors.js';

/**
 * Pure edits of a CT volume that keep its patient coordinates exact, so reference positions made on the original
 * carry over: crops, thicker slices, noise, clipping, a moved patient. Each returns a new Volume and never
 * touches its input. Storage stays what it was (int16 results are rounded, as a scanner stores them).
 */

export type Mat3 = readonly [Vec3, Vec3, Vec3];

function like(src: HuArray, n: number): HuArray {
  return src instanceof Int16Array ? new Int16Array(n) : new Float32Array(n);
}

/** Stores v as the array stores it: rounded and clamped for int16, as is for float32. */
function store(out: HuArray, n: number, v: number): void {
  out[n] = out instanceof Int16Array ? Math.max(-32768, Math.min(32767, Math.round(v))) : v;
}

/** Which patient axis (0 L, 1 P, 2 S) and sign each voxel axis runs along; only axis-aligned volumes are edited. */
export function voxelAxes(v: Volume): { axis: number; sign: 1 | -1 }[] {
  return v.direction.map((d, a) => {
    const axis = d.findIndex((c) => Math.abs(c) > 0.9999);
    if (axis < 0) throw new VbmdError('unsupported', `Volume edits need axis-aligned voxel axes; axis ${a} runs along (${d.map((c) => c.toFixed(3)).join(', ')}).`);
    return { axis, sign: d[axis] > 0 ? 1 : -1 };
  });
}

/** The voxels lo..hi (inclusive, clamped to the volume); origin moves to voxel lo, so every voxel keeps its position. */
export function cropVoxels(v: Volume, lo: Vec3, hi: Vec3): Volume {
  const a = lo.map((x) => Math.max(0, Math.ceil(x))) as Vec3;
  const b = hi.map((x, d) => Math.min(v.dims[d] - 1, Math.floor(x))) as Vec3;
  if (a.some((x, d) => x > b[d])) throw new VbmdError('bad-input', `The crop ${lo.join(',')}..${hi.join(',')} holds no voxel of a ${v.dims.join('x')} volume.`);
  const dims: Vec3 = [b[0] - a[0] + 1, b[1] - a[1] + 1, b[2] - a[2] + 1];
  const out = like(v.hu, dims[0] * dims[1] * dims[2]);
  const [nx, ny] = v.dims;
  for (let k = 0; k < dims[2]; k++) {
    for (let j = 0; j < dims[1]; j++) {
      const from = a[0] + nx * (a[1] + j + ny * (a[2] + k));
      out.set(v.hu.subarray(from, from + dims[0]), dims[0] * (j + dims[1] * k));
    }
  }
  return { hu: out, dims, spacingMm: [...v.spacingMm], originMm: voxelToPatientMm(v, a[0], a[1], a[2]), direction: v.direction };
}

/** Bounds per patient axis (LPS mm, undefined = unbounded) of the voxel centres to keep. */
export interface MmBox {
  minMm?: [number?, number?, number?];
  maxMm?: [number?, number?, number?];
}

/** Keeps the voxels whose centres lie inside the box (axis-aligned volumes). */
export function cropMm(v: Volume, box: MmBox): Volume {
  const axes = voxelAxes(v);
  const lo: Vec3 = [0, 0, 0];
  const hi: Vec3 = [v.dims[0] - 1, v.dims[1] - 1, v.dims[2] - 1];
  axes.forEach(({ axis, sign }, d) => {
    const min = box.minMm?.[axis];
    const max = box.maxMm?.[axis];
    // Position along the patient axis of voxel index t: origin + sign * t * spacing.
    const toIndex = (mm: number): number => ((mm - v.originMm[axis]) * sign) / v.spacingMm[d];
    const bounds = [min, max].map((m) => (m === undefined ? undefined : toIndex(m)));
    const [p, q] = sign > 0 ? bounds : [bounds[1], bounds[0]];
    if (p !== undefined) lo[d] = Math.max(lo[d], Math.ceil(p - 1e-6));
    if (q !== undefined) hi[d] = Math.min(hi[d], Math.floor(q + 1e-6));
  });
  return cropVoxels(v, lo, hi);
}

/**
 * Thicker slices: slabs of thicknessMm from the first slice's outer edge, each the overlap-weighted mean of the
 * original slices (a box slice-sensitivity profile, contiguous slices assumed); the centre of each slab is its new
 * position. A remainder thinner than one slab at the far end is dropped.
 */
export function thickenSlices(v: Volume, thicknessMm: number): Volume {
  const s = v.spacingMm[2];
  if (!(thicknessMm > s)) throw new VbmdError('bad-input', `New slices (${thicknessMm} mm) must be thicker than the old (${s} mm).`);
  const [nx, ny, nz] = v.dims;
  const slabs = Math.floor((nz * s) / thicknessMm + 1e-9);
  if (slabs < 1) throw new VbmdError('bad-input', `A ${nz * s} mm volume holds no ${thicknessMm} mm slab.`);
  const plane = nx * ny;
  const out = like(v.hu, plane * slabs);
  const acc = new Float64Array(plane);
  for (let m = 0; m < slabs; m++) {
    acc.fill(0);
    // Along k in mm from the outer edge of slice 0: slice k spans [k*s, (k+1)*s], slab m spans [m*T, (m+1)*T].
    const a = m * thicknessMm;
    const b = a + thicknessMm;
    for (let k = Math.floor(a / s); k < nz && k * s < b; k++) {
      const w = (Math.min(b, (k + 1) * s) - Math.max(a, k * s)) / thicknessMm;
      if (w <= 0) continue;
      const base = k * plane;
      for (let n = 0; n < plane; n++) acc[n] += w * v.hu[base + n];
    }
    for (let n = 0; n < plane; n++) store(out, m * plane + n, acc[n]);
  }
  const shift = thicknessMm / 2 - s / 2;
  const d = v.direction[2];
  const originMm: Vec3 = [v.originMm[0] + shift * d[0], v.originMm[1] + shift * d[1], v.originMm[2] + shift * d[2]];
  return { hu: out, dims: [nx, ny, slabs], spacingMm: [v.spacingMm[0], v.spacingMm[1], thicknessMm], originMm, direction: v.direction };
}

/** White Gaussian noise of sigmaHu, reproducible from seed (Box-Muller on mulberry32); padding stays padding. */
export function addGaussianNoise(v: Volume, sigmaHu: number, seed: number): Volume {
  const rand = mulberry32(seed);
  const out = like(v.hu, v.hu.length);
  let spare: number | null = null;
  const normal = (): number => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const t = 2 * Math.PI * rand();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
  for (let n = 0; n < v.hu.length; n++) store(out, n, v.hu[n] === PADDING_HU ? PADDING_HU : v.hu[n] + sigmaHu * normal());
  return { ...v, hu: out };
}

/** Values above maxHu set to maxHu, as a scanner or exporter with a 12-bit or clamped range writes them. */
export function clipHu(v: Volume, maxHu: number): Volume {
  const out = like(v.hu, v.hu.length);
  for (let n = 0; n < v.hu.length; n++) out[n] = Math.min(v.hu[n], maxHu);
  return { ...v, hu: out };
}

/** Rotation by angleDeg about patient axis 0 (L), 1 (P) or 2 (S), right-handed. */
export function axisRotation(axis: 0 | 1 | 2, angleDeg: number): Mat3 {
  const c = Math.cos((angleDeg * Math.PI) / 180);
  const s = Math.sin((angleDeg * Math.PI) / 180);
  if (axis === 0) return [[1, 0, 0], [0, c, -s], [0, s, c]];
  if (axis === 1) return [[c, 0, s], [0, 1, 0], [-s, 0, c]];
  return [[c, -s, 0], [s, c, 0], [0, 0, 1]];
}

export function multiply(a: Mat3, b: Mat3): Mat3 {
  const r = (i: number): Vec3 => [0, 1, 2].map((j) => a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j]) as Vec3;
  return [r(0), r(1), r(2)];
}

/** A rigid motion of the patient about a centre: x -> R (x - c) + c, and back. */
export interface PatientMotion {
  rotation: Mat3;
  centreMm: Vec3;
}

export function moveForward(m: PatientMotion, x: Vec3): Vec3 {
  const d = [x[0] - m.centreMm[0], x[1] - m.centreMm[1], x[2] - m.centreMm[2]];
  return [0, 1, 2].map((i) => m.rotation[i][0] * d[0] + m.rotation[i][1] * d[1] + m.rotation[i][2] * d[2] + m.centreMm[i]) as Vec3;
}

export function moveBack(m: PatientMotion, p: Vec3): Vec3 {
  const d = [p[0] - m.centreMm[0], p[1] - m.centreMm[1], p[2] - m.centreMm[2]];
  // The inverse of a rotation is its transpose.
  return [0, 1, 2].map((i) => m.rotation[0][i] * d[0] + m.rotation[1][i] * d[1] + m.rotation[2][i] * d[2] + m.centreMm[i]) as Vec3;
}

/**
 * The scan of the patient moved by m, on the same voxel grid (so still axis-aligned), by trilinear resampling;
 * outside the original scan the value is PADDING_HU. The slices are then trimmed to those whose whole cross-section
 * within keepRadiusMm (in-plane, around m's centre) comes from inside the original scan, so no air wedge cuts
 * through the patient at the ends.
 */
export function movePatient(v: Volume, m: PatientMotion, keepRadiusMm: number): Volume {
  const [nx, ny, nz] = v.dims;
  const out = like(v.hu, v.hu.length);
  // Source voxel coordinates are affine in the output indices: src = base + i*di + j*dj + k*dk.
  const src = (i: number, j: number, k: number): Vec3 => patientMmToVoxel(v, moveBack(m, voxelToPatientMm(v, i, j, k)));
  const base = src(0, 0, 0);
  const step = [src(1, 0, 0), src(0, 1, 0), src(0, 0, 1)].map((p) => [p[0] - base[0], p[1] - base[1], p[2] - base[2]]);
  for (let k = 0, n = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let x = base[0] + j * step[1][0] + k * step[2][0];
      let y = base[1] + j * step[1][1] + k * step[2][1];
      let z = base[2] + j * step[1][2] + k * step[2][2];
      for (let i = 0; i < nx; i++, n++, x += step[0][0], y += step[0][1], z += step[0][2]) {
        store(out, n, trilinear(v, x, y, z));
      }
    }
  }
  const moved: Volume = { ...v, hu: out };
  // Keep slices k whose ring of radius keepRadiusMm around the centre maps inside the original's slices.
  let kLo = Infinity;
  let kHi = -Infinity;
  const c = patientMmToVoxel(v, m.centreMm);
  for (let k = 0; k < nz; k++) {
    const centre = voxelToPatientMm(v, c[0], c[1], k);
    let ok = true;
    for (let t = 0; t < 16 && ok; t++) {
      const a = (t * Math.PI) / 8;
      const p: Vec3 = [centre[0] + keepRadiusMm * Math.cos(a), centre[1] + keepRadiusMm * Math.sin(a), centre[2]];
      const s = patientMmToVoxel(v, moveBack(m, p))[2];
      ok = s >= 0 && s <= nz - 1;
    }
    if (ok) {
      kLo = Math.min(kLo, k);
      kHi = Math.max(kHi, k);
    }
  }
  if (!(kHi >= kLo)) throw new VbmdError('bad-input', 'The moved patient leaves no slice wholly inside the original scan.');
  return cropVoxels(moved, [0, 0, kLo], [nx - 1, ny - 1, kHi]);
}

function trilinear(v: Volume, x: number, y: number, z: number): number {
  const [nx, ny, nz] = v.dims;
  if (x < 0 || y < 0 || z < 0 || x > nx - 1 || y > ny - 1 || z > nz - 1) return PADDING_HU;
  const i = Math.min(Math.floor(x), nx - 2 < 0 ? 0 : nx - 2);
  const j = Math.min(Math.floor(y), ny - 2 < 0 ? 0 : ny - 2);
  const k = Math.min(Math.floor(z), nz - 2 < 0 ? 0 : nz - 2);
  const fx = x - i;
  const fy = y - j;
  const fz = z - k;
  const sx = nx > 1 ? 1 : 0;
  const sy = ny > 1 ? nx : 0;
  const sz = nz > 1 ? nx * ny : 0;
  return blendCell(v.hu, i + nx * (j + ny * k), sx, sy, sz, fx, fy, fz);
}
