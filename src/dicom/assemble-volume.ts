import { VbmdError } from '../util/errors.js';
import { sliceKey, type DicomSlice } from './slice.js';
import type { DicomSliceHeader } from './parse.js';
import { transferSyntaxInfo } from './codecs/transfer-syntax.js';
import { substitutedUidWarning } from './substitute-uids.js';
import { isIntegerRescale, storedToFloatSimd, storedToInt16Simd } from '../imaging/hu-simd.js';
import { PADDING_HU, type HuArray, type LoadedVolume, type Vec3, type VolumeMeta } from '../imaging/volume.js';

export interface AssembleOptions {
  /** What to do with single missing slices inside the stack: fill by linear interpolation (with a warning) or reject. */
  missingSlices?: 'interpolate' | 'reject';
  /** Volume kind recorded in meta; default 'dicom'. */
  kind?: VolumeMeta['kind'];
  /** Carried into meta.skippedSeries (series choice happens before assembly). */
  skippedSeries?: VolumeMeta['skippedSeries'];
}

/** Direction cosines agree within this (about 0.06 degrees): scanners write 6-10 significant digits. */
const COSINE_TOL = 1e-3;
/** Relative slice-spacing deviation accepted silently (rounding of ImagePositionPatient). */
const SPACING_SILENT_REL = 0.02;
/** Relative deviation accepted with a warning; beyond it the stack is not a regular grid. */
const SPACING_WARN_REL = 0.1;
/** More missing slices than this fraction is not a gap to patch but a broken series. */
const MAX_MISSING_FRACTION = 0.05;

/**
 * One series' slices -> a HU volume on a regular grid in LPS (DESIGN.md "Volume"). Slices are ordered by
 * ImagePositionPatient projected on the slice normal (row x column cosine, PS3.3 C.7.6.2.1.1), and the
 * slice spacing is measured from those positions, never taken from SliceThickness (which is the
 * reconstructed thickness and may differ from the spacing, e.g. overlapping reconstructions).
 * Rejects with a VbmdError that says what is wrong and where: mixed sizes, spacings or orientations,
 * duplicate positions or interleaved series, gaps, irregular spacing, gantry tilt (sheared stacks).
 */
export function assembleVolume(slices: DicomSlice[], source: string, options: AssembleOptions = {}): LoadedVolume {
  const plan = planVolume(slices, source, options);
  const hu = new HuVolumeBuilder(plan.dims[0] * plan.dims[1] * plan.dims[2], plan.order.every(hasIntegerHu));
  for (let k = 0; k < plan.order.length; k++) placeSlice(plan, plan.order[k], k, hu);
  return finishVolume(plan, hu.hu);
}

/** Rescale gives integer HU for every stored value (the usual CT: slope 1, integer intercept). */
export function hasIntegerHu(s: Pick<DicomSliceHeader, 'rescaleSlope' | 'rescaleIntercept'>): boolean {
  return isIntegerRescale(s.rescaleSlope, s.rescaleIntercept);
}

/**
 * The HU array of a volume being filled slice by slice. Int16 while every slice gives integer HU that fit
 * int16 (half the memory and memory traffic of float32; HU of CT are integers in [-32768, 32767] in
 * practice); promoted once to Float32 (values copied exactly) as soon as a slice does not, e.g. a
 * non-integer RescaleSlope or an out-of-range value. Readers index either type alike.
 */
export class HuVolumeBuilder {
  hu: HuArray;

  constructor(length: number, int16: boolean) {
    this.hu = int16 ? new Int16Array(length) : new Float32Array(length);
  }

  /** Converts `count` stored values of `s` into hu[offset, offset+count), promoting to Float32 if needed. */
  put(s: DicomSlice, offset: number, count: number): void {
    if (storedToHu(s, this.hu, offset, count)) return;
    this.promote();
    storedToHu(s, this.hu, offset, count);
  }

  /** Grows (same element type, contents kept) to at least `length` elements. */
  ensure(length: number): void {
    if (length <= this.hu.length) return;
    const bigger = this.hu instanceof Int16Array ? new Int16Array(length) : new Float32Array(length);
    bigger.set(this.hu);
    this.hu = bigger;
  }

  promote(): void {
    if (this.hu instanceof Float32Array) return;
    const f = new Float32Array(this.hu.length);
    f.set(this.hu);
    this.hu = f;
  }
}

/** Where each slice goes and what the volume will be: everything assembly decides from headers alone. */
export interface VolumePlan<H extends DicomSliceHeader = DicomSliceHeader> {
  /** Slices sorted along the normal. */
  order: H[];
  /** Slice index in the volume of order[k] (gaps leave indices out). */
  gridIndex: number[];
  /** Runs of missing slices after order[after], filled by interpolation. */
  gaps: { after: number; missing: number }[];
  dims: Vec3;
  spacingMm: Vec3;
  originMm: Vec3;
  direction: [Vec3, Vec3, Vec3];
  meta: VolumeMeta;
}

/**
 * The geometry half of assembly, from headers only, so a folder source can place each slice into the
 * volume as soon as it is decoded (no list of decoded slices held in memory).
 */
export function planVolume<H extends DicomSliceHeader>(slices: H[], source: string, options: AssembleOptions = {}): VolumePlan<H> {
  if (slices.length === 0) throw new VbmdError('no-series', `${source}: no image slices to assemble.`);
  const warnings: string[] = [];
  const first = slices[0];
  const seriesLabel = `series ${first.seriesInstanceUid}${first.seriesDescription ? ` ("${first.seriesDescription}")` : ''} in ${source}`;
  if (slices.length < 2) {
    throw new VbmdError('bad-input', `${seriesLabel} has a single slice; a volume needs a stack of axial slices.`);
  }

  checkSameSize(slices, seriesLabel);
  const pixelSpacing = checkSamePixelSpacing(slices, seriesLabel);
  const { row, col, normal } = checkSameOrientation(slices, seriesLabel);

  // Sort by position along the normal (one projection per slice, sort on numbers).
  const order: Placed<H>[] = slices.map((s) => ({ s, z: dot(s.imagePositionMm!, normal) }));
  order.sort((a, b) => a.z - b.z);
  checkDuplicates(order, seriesLabel);
  checkInterleaved(order, seriesLabel);

  // Spacing from positions: the median step is the grid; deviations are gaps, jitter or broken stacks.
  const steps: number[] = [];
  for (let k = 1; k < order.length; k++) steps.push(order[k].z - order[k - 1].z);
  const spacing = median(steps);
  if (!(spacing > 1e-3)) throw new VbmdError('bad-input', `${seriesLabel}: slice positions do not advance along the slice normal.`);

  // Gantry tilt / shear: the stack must advance along the normal. A lateral drift over the whole stack of
  // more than half a pixel means slices are sheared (tilted gantry without reformatting), which a
  // regular grid cannot represent.
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
      `${seriesLabel} is acquired with gantry tilt (${tiltHeader !== undefined ? `${tiltHeader} degrees in the header, ` : ''}slices sheared by ${measured.toFixed(1)} degrees); vbmd needs untilted axial slices: send a series reconstructed without tilt.`,
      { gantryTiltDeg: tiltHeader, shearDeg: measured },
    );
  }
  if (tiltHeader !== undefined) {
    warnings.push(`Gantry/detector tilt of ${tiltHeader} degrees is recorded, but the slices are stacked along their normal; the geometry was used as stored.`);
  }

  // Grid positions: each slice's index on a regular grid with the median spacing.
  const gridIndex: number[] = [0];
  const gaps: { after: number; missing: number }[] = [];
  let maxDev = 0;
  for (let k = 1; k < order.length; k++) {
    const step = steps[k - 1];
    const m = Math.round(step / spacing);
    const dev = Math.abs(step - m * spacing);
    if (m < 1 || dev > SPACING_WARN_REL * spacing) {
      throw new VbmdError(
        'bad-input',
        `${seriesLabel} has irregular slice spacing: ${fmt(step)} mm between ${where(order[k - 1].s, order[k - 1].z)} and ${where(order[k].s, order[k].z)}, where the series spacing is ${fmt(spacing)} mm.`,
      );
    }
    maxDev = Math.max(maxDev, dev / m);
    if (m > 1) gaps.push({ after: k - 1, missing: m - 1 });
    gridIndex.push(gridIndex[k - 1] + m);
  }
  if (maxDev > SPACING_SILENT_REL * spacing) {
    warnings.push(`Slice spacing varies by up to ${fmt(maxDev)} mm around ${fmt(spacing)} mm; slices were placed on a regular ${fmt(spacing)} mm grid.`);
  }
  const totalMissing = gaps.reduce((a, g) => a + g.missing, 0);
  if (gaps.length > 0) {
    const list = gaps
      .slice(0, 3)
      .map((g) => `${g.missing} between ${where(order[g.after].s, order[g.after].z)} and ${where(order[g.after + 1].s, order[g.after + 1].z)}`)
      .join('; ');
    const what = `${seriesLabel} is missing ${totalMissing} slice${totalMissing > 1 ? 's' : ''} (${list}${gaps.length > 3 ? '; ...' : ''})`;
    const tooMany = gaps.some((g) => g.missing > 1) || totalMissing > Math.max(1, MAX_MISSING_FRACTION * (order.length + totalMissing));
    if (options.missingSlices === 'reject' || tooMany) {
      throw new VbmdError('bad-input', `${what}; send the complete series.`, { missingSlices: totalMissing });
    }
    warnings.push(`${what}; each was filled by linear interpolation of its neighbours.`);
  }

  const cols = first.columns;
  const rows = first.rows;
  const nSlices = gridIndex[gridIndex.length - 1] + 1;

  const lossy = [...new Set(slices.map((s) => s.transferSyntaxUid))].map(transferSyntaxInfo).filter((t) => t.lossy);
  if (lossy.length > 0) {
    warnings.push(`Pixel data were lossy-compressed (${lossy.map((t) => t.name).join(', ')}); HU values are approximate.`);
  }

  const substituted = new Set(slices.flatMap((s) => s.substitutedUids ?? []));
  if (substituted.size > 0) warnings.push(substitutedUidWarning(substituted));

  const meta: VolumeMeta = {
    kind: options.kind ?? 'dicom',
    source,
    studyInstanceUid: first.studyInstanceUid,
    seriesInstanceUid: first.seriesInstanceUid,
    seriesDescription: first.seriesDescription,
    patientId: first.patientId,
    accessionNumber: first.accessionNumber,
    acquisitionDateTime: acquisitionIso(slices),
    manufacturer: first.manufacturer,
    manufacturerModelName: first.manufacturerModelName,
    kvp: first.kvp,
    contrastAgent: contrastAgent(slices),
    skippedSeries: options.skippedSeries,
    warnings,
  };
  for (const k of Object.keys(meta) as (keyof VolumeMeta)[]) if (meta[k] === undefined) delete meta[k];

  return {
    order: order.map((o) => o.s),
    gridIndex,
    gaps,
    dims: [cols, rows, nSlices],
    // PixelSpacing is [between rows, between columns]: i (along a row) steps by the column spacing.
    spacingMm: [pixelSpacing[1], pixelSpacing[0], spacing],
    originMm: [...order[0].s.imagePositionMm!] as Vec3,
    direction: [row, col, normal],
    meta,
  };
}

/**
 * Converts one decoded slice (the k-th of plan.order, or a fresh parse of the same instance) into its
 * place in `hu`. Checks it is the instance and size the plan expects.
 */
export function placeSlice(plan: VolumePlan, slice: DicomSlice, k: number, hu: HuVolumeBuilder): void {
  const expected = plan.order[k];
  const plane = plan.dims[0] * plan.dims[1];
  if (sliceKey(slice) !== sliceKey(expected)) {
    throw new VbmdError('bad-input', `${slice.source} changed while it was being read (instance ${sliceKey(slice)}, expected ${sliceKey(expected)}); load it again.`);
  }
  if (slice.columns !== plan.dims[0] || slice.rows !== plan.dims[1] || slice.pixels.length < plane) {
    throw new VbmdError('bad-input', `${slice.source} has ${slice.pixels.length} pixels, not the ${plan.dims[0]}x${plan.dims[1]} of its series.`);
  }
  hu.put(slice, plan.gridIndex[k] * plane, plane);
}

/**
 * Fills the gaps (linear interpolation between the neighbours) and wraps up the LoadedVolume. Interpolated
 * HU are fractional, so a volume with gaps is Float32 (an int16 one is promoted first, exactly).
 */
export function finishVolume(plan: VolumePlan, volumeHu: HuArray): LoadedVolume {
  let hu = volumeHu;
  if (plan.gaps.length > 0 && hu instanceof Int16Array) {
    const f = new Float32Array(hu.length);
    f.set(hu); // native int16 -> float32 conversion, exact
    hu = f;
  }
  const plane = plan.dims[0] * plan.dims[1];
  for (const g of plan.gaps) {
    const a = plan.gridIndex[g.after];
    const b = plan.gridIndex[g.after + 1];
    for (let m = a + 1; m < b; m++) {
      const t = (m - a) / (b - a);
      const oa = a * plane;
      const ob = b * plane;
      const om = m * plane;
      for (let n = 0; n < plane; n++) hu[om + n] = hu[oa + n] * (1 - t) + hu[ob + n] * t;
    }
  }
  return {
    volume: { hu, dims: plan.dims, spacingMm: plan.spacingMm, originMm: plan.originMm, direction: plan.direction },
    meta: plan.meta,
  };
}

/**
 * Stored values -> HU into `out` at `offset`, honouring BitsStored (mask + sign extension, PS3.5 8.1.1),
 * PixelRepresentation and Pixel Padding Value / Range Limit (PS3.3 C.7.5.1.1.2). One pass, no allocation.
 * Returns false when `out` is an Int16Array that cannot hold this slice's HU (non-integer rescale or a
 * value outside int16; the slot is then undefined): convert into a Float32Array instead.
 */
export function storedToHu(s: DicomSlice, out: HuArray, offset: number, count: number): boolean {
  if (out instanceof Int16Array) return storedToInt16(s, out, offset, count);
  storedToFloat(s, out, offset, count);
  return true;
}

function paddingRange(s: DicomSlice, bits: number, signed: boolean): { lo: number; hi: number; hu: number } | undefined {
  if (s.pixelPaddingValue === undefined) return undefined;
  const a = normalizeStored(s.pixelPaddingValue, bits, signed);
  const b = s.pixelPaddingRangeLimit !== undefined ? normalizeStored(s.pixelPaddingRangeLimit, bits, signed) : a;
  return { lo: Math.min(a, b), hi: Math.max(a, b), hu: PADDING_HU };
}

function storedToInt16(s: DicomSlice, out: Int16Array, offset: number, count: number): boolean {
  const slope = s.rescaleSlope;
  const inter = s.rescaleIntercept;
  if (!isIntegerRescale(slope, inter)) return false;
  const px = s.pixels;
  const signed = s.pixelRepresentation === 1;
  const bits = s.bitsStored > 0 && s.bitsStored <= 16 ? s.bitsStored : 16;
  const pad = paddingRange(s, bits, signed);
  const r = storedToInt16Simd(px, out, offset, count, slope, inter, pad, signed, bits);
  if (r !== 'unavailable') return r === 'ok';
  const mask = (1 << bits) - 1;
  const signBit = 1 << (bits - 1);
  const full = 1 << bits;
  for (let n = 0; n < count; n++) {
    let v = px[n] & mask;
    if (signed && v & signBit) v -= full;
    const h = pad && v >= pad.lo && v <= pad.hi ? pad.hu : v * slope + inter;
    if (h < -32768 || h > 32767) return false;
    out[offset + n] = h;
  }
  return true;
}

function storedToFloat(s: DicomSlice, out: Float32Array, offset: number, count: number): void {
  const px = s.pixels;
  const slope = s.rescaleSlope;
  const inter = s.rescaleIntercept;
  const signed = s.pixelRepresentation === 1;
  const bits = s.bitsStored > 0 && s.bitsStored <= 16 ? s.bitsStored : 16;
  let padLo = Infinity;
  let padHi = -Infinity;
  if (s.pixelPaddingValue !== undefined) {
    const a = normalizeStored(s.pixelPaddingValue, bits, signed);
    const b = s.pixelPaddingRangeLimit !== undefined ? normalizeStored(s.pixelPaddingRangeLimit, bits, signed) : a;
    padLo = Math.min(a, b);
    padHi = Math.max(a, b);
  }
  const hasPad = padLo <= padHi;
  if (bits === 16 && ((signed && px instanceof Int16Array) || (!signed && px instanceof Uint16Array))) {
    if (!hasPad) {
      if (storedToFloatSimd(px, out, offset, count, slope, inter)) return;
      // Typed-array set converts integer -> float in native code; the affine pass then runs on floats
      // in place (measured ~25% faster than one JS pass over mixed integer/float arrays).
      const dst = out.subarray(offset, offset + count);
      dst.set(px.subarray(0, count));
      if (slope !== 1 || inter !== 0) for (let n = 0; n < count; n++) dst[n] = dst[n] * slope + inter;
    } else {
      if (storedToFloatSimd(px, out, offset, count, slope, inter, { lo: padLo, hi: padHi, hu: PADDING_HU })) return;
      for (let n = 0; n < count; n++) {
        const v = px[n];
        out[offset + n] = v >= padLo && v <= padHi ? PADDING_HU : v * slope + inter;
      }
    }
    return;
  }
  if (storedToFloatSimd(px, out, offset, count, slope, inter, hasPad ? { lo: padLo, hi: padHi, hu: PADDING_HU } : undefined, signed, bits)) return;
  const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const signBit = 1 << (bits - 1);
  const full = 1 << bits;
  for (let n = 0; n < count; n++) {
    let v = px[n] & mask;
    if (signed && v & signBit) v -= full;
    out[offset + n] = hasPad && v >= padLo && v <= padHi ? PADDING_HU : v * slope + inter;
  }
}

function normalizeStored(v: number, bits: number, signed: boolean): number {
  let x = v & ((1 << bits) - 1);
  if (signed && x & (1 << (bits - 1))) x -= 1 << bits;
  return x;
}

function checkSameSize(slices: DicomSliceHeader[], label: string): void {
  const counts = new Map<string, number>();
  for (const s of slices) {
    const k = `${s.columns}x${s.rows}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  if (counts.size > 1) {
    throw new VbmdError('bad-input', `${label} mixes image sizes (${describeCounts(counts)} slices); a volume needs one size: send one consistent series.`);
  }
}

function checkSamePixelSpacing(slices: DicomSliceHeader[], label: string): [number, number] {
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

function checkSameOrientation(slices: DicomSliceHeader[], label: string): { row: Vec3; col: Vec3; normal: Vec3 } {
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

interface Placed<H extends DicomSliceHeader = DicomSliceHeader> {
  s: H;
  z: number;
}

function checkDuplicates(order: Placed[], label: string): void {
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
function checkInterleaved(order: Placed[], label: string): void {
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

function acquisitionIso(slices: DicomSliceHeader[]): string | undefined {
  let best: string | undefined;
  for (const s of slices) {
    const date = s.acquisitionDate ?? s.studyDate;
    if (!date || !/^\d{8}$/.test(date.trim())) continue;
    const t = (s.acquisitionTime ?? '').trim().replace(/:/g, '');
    const key = `${date.trim()}${t.padEnd(6, '0').slice(0, 6)}`;
    if (!best || key < best) best = key;
  }
  if (!best) return undefined;
  const withTime = slices.some((s) => s.acquisitionTime);
  const d = `${best.slice(0, 4)}-${best.slice(4, 6)}-${best.slice(6, 8)}`;
  return withTime ? `${d}T${best.slice(8, 10)}:${best.slice(10, 12)}:${best.slice(12, 14)}` : d;
}

/** (0018,0010) present and not a "none" spelling. */
function contrastAgent(slices: DicomSliceHeader[]): string | undefined {
  for (const s of slices) {
    const a = s.contrastAgent?.trim();
    if (a && !/^(none|no|n|0|-)$/i.test(a)) return a;
  }
  return undefined;
}

function where(s: DicomSliceHeader, z: number): string {
  if (s.frameNumber !== undefined) return `${fmt(z)} mm (frame ${s.frameNumber})`;
  return `${fmt(z)} mm${s.instanceNumber !== undefined ? ` (instance ${s.instanceNumber})` : ''}`;
}

function describeCounts(counts: Map<string, number>): string {
  return [...counts.entries()].map(([k, n]) => `${k}: ${n}`).join(', ');
}

function fmt(x: number): string {
  return String(Math.round(x * 1000) / 1000);
}

function median(xs: number[]): number {
  const a = [...xs].sort((p, q) => p - q);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

function dot(a: readonly number[], b: readonly number[]): number {
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
