import type { DicomSlice } from './slice.js';
import type { DicomSliceHeader } from './parse.js';
import { isIntegerRescale, storedToFloatSimd, storedToInt16Simd } from '../imaging/hu-simd.js';
import { PADDING_HU, type HuArray } from '../imaging/volume.js';
import { sharedFloat32, sharedInt16 } from '../imaging/shared-memory.js';

/**
 * Stored pixel values -> HU: the per-slice conversion (SIMD where available, a JS loop otherwise) and the
 * HU array a volume is filled into. The geometry is volume-plan.ts; assemble-volume.ts puts them together.
 */

/** Rescale gives integer HU for every stored value (the usual CT: slope 1, integer intercept). */
export function hasIntegerHu(s: Pick<DicomSliceHeader, 'rescaleSlope' | 'rescaleIntercept'>): boolean {
  return isIntegerRescale(s.rescaleSlope, s.rescaleIntercept);
}

/**
 * The HU array of a volume being filled slice by slice. Int16 while every slice gives integer HU that fit
 * int16 (half the memory and memory traffic of float32; HU of CT are integers in [-32768, 32767] in
 * practice); promoted once to Float32 (values copied exactly) as soon as a slice does not, e.g. a
 * non-integer RescaleSlope or an out-of-range value. Readers index either type alike. The array is in shared
 * memory, so the engine's helper thread reads it without a copy (src/bmd/parallel/helper-thread.ts).
 */
export class HuVolumeBuilder {
  hu: HuArray;

  constructor(length: number, int16: boolean) {
    this.hu = int16 ? sharedInt16(length) : sharedFloat32(length);
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
    const bigger = this.hu instanceof Int16Array ? sharedInt16(length) : sharedFloat32(length);
    bigger.set(this.hu);
    this.hu = bigger;
  }

  promote(): void {
    if (this.hu instanceof Float32Array) return;
    const f = sharedFloat32(this.hu.length);
    f.set(this.hu);
    this.hu = f;
  }
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
