import { describe, expect, it } from 'vitest';
import { assembleVolume, planVolume, storedToHu } from '../../src/dicom/assemble-volume.js';
import type { DicomSlice } from '../../src/dicom/slice.js';
import { PADDING_HU } from '../../src/imaging/volume.js';
import { isVbmdError } from '../../src/util/errors.js';

/** A 4x3 slice at height z with stored values base+n. */
function slice(z: number, instance: number, over: Partial<DicomSlice> = {}): DicomSlice {
  const pixels = new Int16Array(12);
  for (let n = 0; n < 12; n++) pixels[n] = 1000 + n + 100 * instance;
  return {
    source: `f${instance}.dcm`,
    sopInstanceUid: `1.2.${instance}`,
    studyInstanceUid: '1.2',
    seriesInstanceUid: '1.2.9',
    modality: 'CT',
    imageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
    instanceNumber: instance,
    rows: 3,
    columns: 4,
    pixelSpacingMm: [0.5, 0.6],
    imagePositionMm: [10, 20, z],
    imageOrientation: [1, 0, 0, 0, 1, 0],
    rescaleSlope: 1,
    rescaleIntercept: -1024,
    pixelRepresentation: 1,
    bitsAllocated: 16,
    bitsStored: 16,
    numberOfFrames: 1,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    acquisitionDate: '20230102',
    acquisitionTime: '101010.5',
    pixels,
    ...over,
  };
}

function stack(n: number, step = 1.25): DicomSlice[] {
  return Array.from({ length: n }, (_, k) => slice(-50 + k * step, k + 1));
}

function rejection(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isVbmdError(e), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a rejection');
}

describe('assembleVolume', () => {
  it('sorts shuffled slices by position and takes spacing from positions, PixelSpacing as [row, column]', () => {
    const s = stack(6);
    const { volume, meta } = assembleVolume([s[3], s[0], s[5], s[1], s[4], s[2]], 'test');
    expect(volume.dims).toEqual([4, 3, 6]);
    expect(volume.spacingMm).toEqual([0.6, 0.5, 1.25]);
    expect(volume.originMm).toEqual([10, 20, -50]);
    for (let k = 0; k < 6; k++) expect(volume.hu[k * 12 + 5]).toBe(1000 + 5 + 100 * (k + 1) - 1024);
    expect(meta.acquisitionDateTime).toBe('2023-01-02T10:10:10');
    expect(meta.warnings).toEqual([]);
  });

  it('accepts position rounding silently, warns on jitter, rejects irregular spacing', () => {
    const rounding = stack(8).map((s, k) => ({ ...s, imagePositionMm: [10, 20, -50 + k * 1.25 + (k % 2 ? 0.004 : 0)] as [number, number, number] }));
    expect(assembleVolume(rounding, 't').meta.warnings).toEqual([]);
    const jitter = stack(8).map((s, k) => ({ ...s, imagePositionMm: [10, 20, -50 + k * 1.25 + (k === 4 ? 0.08 : 0)] as [number, number, number] }));
    expect(assembleVolume(jitter, 't').meta.warnings?.[0]).toMatch(/Slice spacing varies by up to 0.08 mm around 1.25 mm/);
    const broken = stack(8).map((s, k) => ({ ...s, imagePositionMm: [10, 20, -50 + k * 1.25 + (k >= 4 ? 0.6 : 0)] as [number, number, number] }));
    expect(rejection(() => assembleVolume(broken, 't'))).toMatch(/irregular slice spacing: 1.85 mm between -46.25 mm \(instance 4\) and -44.4 mm \(instance 5\)/);
  });

  it('rejects a few duplicate positions naming the files', () => {
    const s = stack(10);
    const dup = { ...s[4], sopInstanceUid: '9.9', source: 'copy.dcm', instanceNumber: 5 };
    expect(rejection(() => assembleVolume([...s, dup], 't'))).toMatch(/1 duplicate slice position \(e.g. f5.dcm and copy.dcm both at -45 mm/);
  });

  it('spots interleaving from instance numbers, but not constant or arbitrary numbering', () => {
    const interleaved = stack(12).map((s, k) => ({ ...s, instanceNumber: k % 2 === 0 ? k / 2 + 1 : 100 + (k - 1) / 2 }));
    expect(rejection(() => assembleVolume(interleaved, 't'))).toMatch(/two series interleaved .*1, 100, 2, 101, 3, 102/);
    const constant = stack(12).map((s) => ({ ...s, instanceNumber: 1 }));
    expect(assembleVolume(constant, 't').volume.dims[2]).toBe(12);
    const shuffled = [7, 3, 11, 1, 9, 2, 12, 5, 4, 10, 6, 8];
    const arbitrary = stack(12).map((s, k) => ({ ...s, instanceNumber: shuffled[k] }));
    expect(assembleVolume(arbitrary, 't').volume.dims[2]).toBe(12);
    const twoStacks = stack(12).map((s, k) => ({ ...s, instanceNumber: (k % 6) + 1 }));
    expect(assembleVolume(twoStacks, 't').volume.dims[2]).toBe(12);
  });

  it('rejects slices without geometry and slices with mixed pixel spacing', () => {
    const s = stack(5);
    s[2] = { ...s[2], imagePositionMm: undefined };
    expect(rejection(() => assembleVolume(s, 't'))).toMatch(/f3.dcm lacks ImagePositionPatient/);
    const t = stack(5);
    t[1] = { ...t[1], pixelSpacingMm: [0.7, 0.7] };
    expect(rejection(() => assembleVolume(t, 't'))).toMatch(/mixes pixel spacings \(0.5x0.6 mm: 4, 0.7x0.7 mm: 1 slices\)/);
  });

  it('records contrast unless the agent is a "none" spelling, and lossy syntaxes as a warning', () => {
    const none = stack(4).map((s) => ({ ...s, contrastAgent: 'NONE' }));
    expect(assembleVolume(none, 't').meta.contrastAgent).toBeUndefined();
    const iv = stack(4).map((s) => ({ ...s, contrastAgent: 'OMNIPAQUE 350' }));
    expect(assembleVolume(iv, 't').meta.contrastAgent).toBe('OMNIPAQUE 350');
    const lossy = stack(4).map((s) => ({ ...s, transferSyntaxUid: '1.2.840.10008.1.2.4.91' }));
    expect(assembleVolume(lossy, 't').meta.warnings?.[0]).toMatch(/lossy-compressed \(JPEG 2000 Image Compression\)/);
  });

  it('plans from headers alone (no pixels needed)', () => {
    const headers = stack(5).map(({ pixels: _p, ...h }) => h);
    const plan = planVolume(headers, 't');
    expect(plan.dims).toEqual([4, 3, 5]);
    expect(plan.order.map((h) => h.instanceNumber)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('volume HU storage', () => {
  it('is Int16 for integer rescales, exactly the Float32 values', () => {
    const { volume } = assembleVolume(stack(6), 't');
    expect(volume.hu).toBeInstanceOf(Int16Array);
    for (let k = 0; k < 6; k++) for (let n = 0; n < 12; n++) expect(volume.hu[k * 12 + n]).toBe(1000 + n + 100 * (k + 1) - 1024);
  });

  it('is Float32 (all values exact) when one slice has a fractional slope or HU outside int16', () => {
    const s = stack(6);
    s[4] = { ...s[4], rescaleSlope: 0.5 };
    const fractional = assembleVolume(s, 't').volume;
    expect(fractional.hu).toBeInstanceOf(Float32Array);
    expect(fractional.hu[4 * 12 + 1]).toBe((1000 + 1 + 500) * 0.5 - 1024);
    expect(fractional.hu[5 * 12 + 1]).toBe(1000 + 1 + 600 - 1024);
    const t = stack(6);
    t[3] = { ...t[3], pixels: t[3].pixels.map((v, n) => (n === 7 ? -32000 : v)) as Int16Array };
    const wide = assembleVolume(t, 't').volume;
    expect(wide.hu).toBeInstanceOf(Float32Array);
    expect(wide.hu[3 * 12 + 7]).toBe(-32000 - 1024);
    expect(wide.hu[2 * 12 + 7]).toBe(1000 + 7 + 300 - 1024);
    expect(wide.hu[4 * 12 + 6]).toBe(1000 + 6 + 500 - 1024);
  });

  it('is Float32 when a missing slice is interpolated (fractional HU kept)', () => {
    const s = stack(30).filter((_, k) => k !== 10);
    s[10] = { ...s[10], pixels: s[10].pixels.map((v) => v + 1) as Int16Array };
    const { volume } = assembleVolume(s, 't');
    expect(volume.hu).toBeInstanceOf(Float32Array);
    expect(volume.hu[10 * 12]).toBe((volume.hu[9 * 12] + volume.hu[11 * 12]) / 2);
    expect(volume.hu[10 * 12] % 1).toBe(0.5);
  });
});

describe('storedToHu', () => {
  const base = slice(0, 1);
  it('masks BitsStored and sign-extends signed values (12-bit stored in 16)', () => {
    // 0xF800 | 0x0FFF: high garbage bits above bit 11 must be ignored; 0x0FFF as signed 12-bit is -1.
    const px = new Uint16Array([0xffff, 0x0800, 0x07ff, 0xf005]);
    const out = new Float32Array(4);
    storedToHu({ ...base, pixels: px, bitsStored: 12, pixelRepresentation: 1, rescaleIntercept: 0 }, out, 0, 4);
    expect(Array.from(out)).toEqual([-1, -2048, 2047, 5]);
    storedToHu({ ...base, pixels: px, bitsStored: 12, pixelRepresentation: 0, rescaleIntercept: -1024 }, out, 0, 4);
    expect(Array.from(out)).toEqual([4095 - 1024, 2048 - 1024, 2047 - 1024, 5 - 1024]);
  });

  it('maps Pixel Padding Value and Range Limit to PADDING_HU, with slope and intercept elsewhere', () => {
    const px = new Int16Array([-2000, -1500, -1000, 0, 500]);
    const out = new Float32Array(5);
    storedToHu({ ...base, pixels: px, pixelPaddingValue: -2000, pixelPaddingRangeLimit: -1500, rescaleSlope: 0.5, rescaleIntercept: -10 }, out, 0, 5);
    expect(Array.from(out)).toEqual([PADDING_HU, PADDING_HU, -510, -10, 240]);
  });

  it('writes int16 HU for an integer rescale and says when int16 cannot hold a slice', () => {
    const out = new Int16Array(3);
    expect(storedToHu({ ...base, pixels: new Int16Array([-1000, 0, 2000]) }, out, 0, 3)).toBe(true);
    expect(Array.from(out)).toEqual([-2024, -1024, 976]);
    expect(storedToHu({ ...base, pixels: new Int16Array([-32000, 0, 1]) }, out, 0, 3)).toBe(false);
    expect(storedToHu({ ...base, pixels: new Int16Array([1, 2, 3]), rescaleSlope: 0.5 }, out, 0, 3)).toBe(false);
  });

  it('unsigned 16-bit values above 32767 stay positive', () => {
    const out = new Float32Array(2);
    storedToHu({ ...base, pixels: new Uint16Array([40000, 1]), pixelRepresentation: 0, rescaleIntercept: -32768 }, out, 0, 2);
    expect(Array.from(out)).toEqual([40000 - 32768, 1 - 32768]);
  });
});
