import type { HuArray, Vec3, Volume } from '../../imaging/volume.js';
import { chunkCount, ONE_THREAD, type ChunkRunner } from '../parallel/chunk-runner.js';
import { patientMmToVoxel } from '../../imaging/volume.js';
import { blendCell } from '../../imaging/trilinear.js';
import type { Centerline } from './centerline.js';

/**
 * The spine resampled into its own frame: s along the centre line (caudal to cranial), u along its AP axis
 * (posterior positive, 0 at the body centre line), v along its LR axis (patient left positive), at 1 mm.
 * Samples outside the scanned volume are NaN, so a cropped field of view is seen as missing, not as air.
 */
export interface StraightSpine {
  /** index = v + nv * (u + nu * s) */
  readonly hu: Float32Array;
  readonly ns: number;
  readonly nu: number;
  readonly nv: number;
  readonly uMinMm: number;
  readonly vMinMm: number;
  readonly stepMm: number;
}

export function straightIndex(st: StraightSpine, s: number, u: number, v: number): number {
  return v + st.nv * (u + st.nu * s);
}

/** HU at (s, uMm, vMm) of the straightened spine, nearest sample; NaN outside. */
export function straightAt(st: StraightSpine, s: number, uMm: number, vMm: number): number {
  const u = Math.round((uMm - st.uMinMm) / st.stepMm);
  const v = Math.round((vMm - st.vMinMm) / st.stepMm);
  if (s < 0 || s >= st.ns || u < 0 || u >= st.nu || v < 0 || v >= st.nv) return NaN;
  return st.hu[straightIndex(st, s, u, v)];
}

/**
 * Trilinear samples of the volume on the curve's planes. Each plane is an affine image of the (u, v) grid,
 * so the inner loop only adds two voxel-space increments per step (no matrix work per sample).
 */
export function straightenSpine(volume: Volume, cl: Centerline, uRangeMm: [number, number], vRangeMm: [number, number], runner: ChunkRunner = ONE_THREAD): StraightSpine {
  const step = cl.stepMm;
  const nu = Math.floor((uRangeMm[1] - uRangeMm[0]) / step) + 1;
  const nv = Math.floor((vRangeMm[1] - vRangeMm[0]) / step) + 1;
  const ns = cl.n;
  const hu = runner.float32(ns * nu * nv);
  // Per plane: its first sample's voxel, then the voxel steps along u and along v (9 numbers).
  const planes = new Float64Array(9 * ns);
  for (let s = 0; s < ns; s++) {
    const { c0, du, dv } = planeInVoxels(volume, cl, s, uRangeMm[0], vRangeMm[0]);
    planes.set([...c0, ...du, ...dv], 9 * s);
  }
  runner.run('straighten', { src: volume.hu, dims: volume.dims, planes, nu, nv, out: hu }, chunkCount(ns, PLANES_PER_CHUNK), straightenChunk);
  return { hu, ns, nu, nv, uMinMm: uRangeMm[0], vMinMm: vRangeMm[0], stepMm: step };
}

/** Planes per chunk of the straightened block (a chunk is ~5 ms on a 512x512 study: fine enough to share). */
const PLANES_PER_CHUNK = 8;

/** What one chunk of the straightening needs: the source, the planes in voxel space and the block it fills. */
export interface Straightening {
  src: HuArray;
  dims: Vec3;
  planes: Float64Array;
  nu: number;
  nv: number;
  out: Float32Array;
}

/** Samples planes chunk*PLANES_PER_CHUNK onwards; outside the scanned volume, NaN. */
export function straightenChunk(p: Straightening, chunk: number): void {
  const { src, planes, nu, nv, out: hu } = p;
  const [nx, ny, nz] = p.dims;
  const sxy = nx * ny;
  // Steps of one voxel on each axis (none on an axis one voxel thick), and the last index a fast sample may start at.
  const bx = nx > 1 ? 1 : 0;
  const by = ny > 1 ? nx : 0;
  const bz = nz > 1 ? sxy : 0;
  const nx1 = nx - 1;
  const ny1 = ny - 1;
  const nz1 = nz - 1;
  const sTo = Math.min(planes.length / 9, (chunk + 1) * PLANES_PER_CHUNK);
  for (let s = chunk * PLANES_PER_CHUNK; s < sTo; s++) {
    const q = 9 * s;
    const dvx = planes[q + 6];
    const dvy = planes[q + 7];
    const dvz = planes[q + 8];
    let o = s * nu * nv;
    for (let u = 0; u < nu; u++) {
      let x = planes[q] + u * planes[q + 3];
      let y = planes[q + 1] + u * planes[q + 4];
      let z = planes[q + 2] + u * planes[q + 5];
      for (let v = 0; v < nv; v++, o++, x += dvx, y += dvy, z += dvz) {
        if (x >= 0 && y >= 0 && z >= 0 && x < nx1 && y < ny1 && z < nz1) {
          // Inside the last voxel centres on every axis (nearly every sample): no clamping, the same sums.
          const x0 = Math.floor(x);
          const y0 = Math.floor(y);
          const z0 = Math.floor(z);
          const fx = x - x0;
          const fy = y - y0;
          const fz = z - z0;
          hu[o] = blendCell(src, x0 + nx * y0 + sxy * z0, 1, nx, sxy, fx, fy, fz);
          continue;
        }
        // Half a voxel of slack at the faces: the outermost voxel centres are still inside the scan.
        if (x < -0.5 || y < -0.5 || z < -0.5 || x > nx - 0.5 || y > ny - 0.5 || z > nz - 0.5) {
          hu[o] = NaN;
          continue;
        }
        const xc = Math.min(nx - 1, Math.max(0, x));
        const yc = Math.min(ny - 1, Math.max(0, y));
        const zc = Math.min(nz - 1, Math.max(0, z));
        const x0 = Math.min(nx - 2, Math.floor(xc));
        const y0 = Math.min(ny - 2, Math.floor(yc));
        const z0 = Math.min(nz - 2, Math.floor(zc));
        const fx = nx > 1 ? xc - x0 : 0;
        const fy = ny > 1 ? yc - y0 : 0;
        const fz = nz > 1 ? zc - z0 : 0;
        hu[o] = blendCell(src, Math.max(0, x0) + nx * Math.max(0, y0) + sxy * Math.max(0, z0), bx, by, bz, fx, fy, fz);
      }
    }
  }
}

/**
 * Plane s of the straightened block in the volume's voxel space: the voxel of its first sample (u and v at
 * their minimum) and the voxel steps of one sample along u and along v (the linear part of the inverse affine).
 */
function planeInVoxels(volume: Volume, cl: Centerline, s: number, uMinMm: number, vMinMm: number): { c0: Vec3; du: Vec3; dv: Vec3 } {
  const origin = patientMmToVoxel(volume, [0, 0, 0]);
  const linear = (d: Vec3): Vec3 => {
    const p = patientMmToVoxel(volume, d);
    return [p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]];
  };
  const at = (a: Float32Array | Float64Array): Vec3 => [a[3 * s], a[3 * s + 1], a[3 * s + 2]];
  const [c, ap, lr] = [at(cl.pointMm), at(cl.ap), at(cl.lr)];
  const step = cl.stepMm;
  const c0 = patientMmToVoxel(volume, [c[0] + uMinMm * ap[0] + vMinMm * lr[0], c[1] + uMinMm * ap[1] + vMinMm * lr[1], c[2] + uMinMm * ap[2] + vMinMm * lr[2]]);
  return { c0, du: linear([ap[0] * step, ap[1] * step, ap[2] * step]), dv: linear([lr[0] * step, lr[1] * step, lr[2] * step]) };
}
