import { VbmdError } from '../util/errors.js';
import type { DicomSliceHeader } from './parse.js';
import type { Vec3 } from '../imaging/volume.js';

/**
 * The checks that a series' slices form one regular stack (same size, pixel spacing and orientation, no
 * duplicate or interleaved positions, no shear), each rejecting with a VbmdError that names the series
 * and the slices at fault; and the small vector and formatting helpers they share with volume-plan.ts.
 */

/** Direction cosines agree within this (about 0.06 degrees): scanners write 6-10 significant digits. */
const COSINE_TOL = 1e-3;

export function checkSameSize(slices: DicomSliceHeader[], label: string): void {
  const counts = new Map<string, number>();
  for (const s of slices) {
    const k = `${s.columns}x${s.rows}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  if (counts.size > 1) {
    throw new VbmdError('bad-input', `${label} mixes image sizes (${describeCounts(counts)} slices); a volume needs one size: send one consistent series.`);
  }
}

export function checkSamePixelSpacing(slices: DicomSliceHeader[], label: string): [number, number] {
  const ref = slices[0].pixelSpacingMm;
  const missing = slices.find((s) => !s.pixelSpacingMm);
  if (!ref || missing) throw new VbmdError('bad-input', `${(missing ?? slices[0]).source} has no PixelSpacing (0028,0030); it cannot be measured in mm.`);
  if (!(ref[0] > 0 && ref[1] > 0)) throw new VbmdError('bad-input', `${slices[0].source} has an invalid PixelSpacing ${ref.join('\\')}.`);
  const counts = new Map<string, number>();
  for (const s of slices) {
    const p = s.pixelSpacingMm!;
    if (Math.abs(p[0] - ref[0]) > 1e-3 * ref[0] || Math.abs(p[1] - ref[1]) > 1e-3 * ref[1]) {
      for (const t of slices) {
        const k = t.pixelSpacingMm!.map((x) => fmt(x)).join('x') + ' mm';
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      throw new VbmdError('bad-input', `${label} mixes pixel spacings (${describeCounts(counts)} slices); send one consistent series.`);
    }
  }
  return ref;
}

export function checkSameOrientation(slices: DicomSliceHeader[], label: string): { row: Vec3; col: Vec3; normal: Vec3 } {
  const noGeom = slices.find((s) => !s.imageOrientation || !s.imagePositionMm);
  if (noGeom) {
    throw new VbmdError('bad-input', `${noGeom.source} lacks ImagePositionPatient/ImageOrientationPatient; slices cannot be placed in space.`);
  }
  const o = slices[0].imageOrientation!;
  const row = unit([o[0], o[1], o[2]], slices[0].source);
  const col = unit([o[3], o[4], o[5]], slices[0].source);
  if (Math.abs(dot(row, col)) > 1e-2) {
    throw new VbmdError('bad-input', `${slices[0].source} has non-orthogonal ImageOrientationPatient ${o.join('\\')}.`);
  }
  for (const s of slices) {
    const q = s.imageOrientation!;
    if (q.some((v, a) => Math.abs(v - o[a]) > COSINE_TOL)) {
      throw new VbmdError(
        'bad-input',
        `${label} mixes slice orientations (${s.source} has ${q.map((v) => fmt(v)).join('\\')}, ${slices[0].source} has ${o.map((v) => fmt(v)).join('\\')}); send one consistent series.`,
      );
    }
  }
  const normal = unit(cross(row, col), slices[0].source);
  return { row, col, normal };
}

export interface Placed<H extends DicomSliceHeader = DicomSliceHeader> {
  s: H;
  z: number;
}

export function checkDuplicates(order: Placed[], label: string): void {
  const dups: [Placed, Placed][] = [];
  for (let k = 1; k < order.length; k++) if (Math.abs(order[k].z - order[k - 1].z) < 1e-3) dups.push([order[k - 1], order[k]]);
  if (dups.length === 0) return;
  const [a, b] = dups[0];
  const what =
    dups.length * 2 >= order.length
      ? `two series interleaved under one SeriesInstanceUID (${dups.length} positions occur twice`
      : `${dups.length} duplicate slice position${dups.length > 1 ? 's' : ''} (`;
  const example = `${what.endsWith('(') ? '' : ', '}e.g. ${a.s.source} and ${b.s.source} both at ${fmt(a.z)} mm along the normal)`;
  throw new VbmdError(
    'bad-input',
    `${label} has ${what}${example}; send one series per acquisition.`,
    { duplicatePositions: dups.length },
  );
}

/**
 * Two acquisitions merged under one SeriesInstanceUID, their slices alternating along the stack, show in
 * the instance numbers: taken in position order they are not monotonic, yet every other one is (each
 * acquisition numbered on its own). Arbitrary or constant numbering does not match this pattern, so it
 * is never mistaken for interleaving.
 */
export function checkInterleaved(order: Placed[], label: string): void {
  const inst = order.map((p) => p.s.instanceNumber);
  if (inst.length < 6 || inst.some((v) => v === undefined)) return;
  const nums = inst as number[];
  const direction = (xs: number[]): number => {
    let dir = 0;
    for (let k = 1; k < xs.length; k++) {
      const d = Math.sign(xs[k] - xs[k - 1]);
      if (d === 0 || (dir !== 0 && d !== dir)) return 0;
      dir = d;
    }
    return dir;
  };
  if (direction(nums) !== 0) return;
  const even = direction(nums.filter((_, k) => k % 2 === 0));
  const odd = direction(nums.filter((_, k) => k % 2 === 1));
  if (even !== 0 && even === odd) {
    throw new VbmdError(
      'bad-input',
      `${label} looks like two series interleaved under one SeriesInstanceUID (along the stack, instance numbers alternate between two sequences: ${nums.slice(0, 6).join(', ')}, ...); send one series per acquisition.`,
    );
  }
}

/**
 * Gantry tilt / shear: the stack must advance along the normal. A lateral drift over the whole stack of
 * more than half a pixel means slices are sheared (tilted gantry without reformatting), which a regular
 * grid cannot represent. Returns the warning for a tilt recorded in a header (the first in `slices` order) of a stack that is not
 * sheared; undefined when none is recorded.
 */
export function checkNoShear(slices: DicomSliceHeader[], order: Placed[], normal: Vec3, pixelSpacing: [number, number], label: string): string | undefined {
  const p0 = order[0].s.imagePositionMm!;
  const pN = order[order.length - 1].s.imagePositionMm!;
  const along = order[order.length - 1].z - order[0].z;
  const lateral = Math.hypot(
    pN[0] - p0[0] - along * normal[0],
    pN[1] - p0[1] - along * normal[1],
    pN[2] - p0[2] - along * normal[2],
  );
  const tiltHeader = slices.find((s) => s.gantryTiltDeg !== undefined && Math.abs(s.gantryTiltDeg) > 0.01)?.gantryTiltDeg;
  if (lateral > 0.5 * Math.min(pixelSpacing[0], pixelSpacing[1])) {
    const measured = (Math.atan2(lateral, along) * 180) / Math.PI;
    throw new VbmdError(
      'unsupported',
      `${label} is acquired with gantry tilt (${tiltHeader !== undefined ? `${tiltHeader} degrees in the header, ` : ''}slices sheared by ${measured.toFixed(1)} degrees); vbmd needs untilted axial slices: send a series reconstructed without tilt.`,
      { gantryTiltDeg: tiltHeader, shearDeg: measured },
    );
  }
  if (tiltHeader === undefined) return undefined;
  return `Gantry/detector tilt of ${tiltHeader} degrees is recorded, but the slices are stacked along their normal; the geometry was used as stored.`;
}

export function where(s: DicomSliceHeader, z: number): string {
  if (s.frameNumber !== undefined) return `${fmt(z)} mm (frame ${s.frameNumber})`;
  return `${fmt(z)} mm${s.instanceNumber !== undefined ? ` (instance ${s.instanceNumber})` : ''}`;
}

function describeCounts(counts: Map<string, number>): string {
  return [...counts.entries()].map(([k, n]) => `${k}: ${n}`).join(', ');
}

export function fmt(x: number): string {
  return String(Math.round(x * 1000) / 1000);
}

export function median(xs: number[]): number {
  const a = [...xs].sort((p, q) => p - q);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

export function dot(a: readonly number[], b: readonly number[]): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function unit(v: Vec3, source: string): Vec3 {
  const n = Math.hypot(v[0], v[1], v[2]);
  if (!(n > 0.5 && n < 1.5)) throw new VbmdError('bad-input', `${source} has an invalid ImageOrientationPatient (vector length ${fmt(n)}).`);
  return [v[0] / n, v[1] / n, v[2] / n];
}
