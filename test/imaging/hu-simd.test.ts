import { describe, expect, it } from 'vitest';
import { isIntegerRescale, storedToFloatSimd, storedToInt16Simd } from '../../src/imaging/hu-simd.js';

describe('storedToFloatSimd', () => {
  it('equals the float32-rounded JS result for signed and unsigned input, any length and offset', () => {
    const n = 4099; // not a multiple of 8: exercises the JS tail
    const s = new Int16Array(n);
    for (let i = 0; i < n; i++) s[i] = ((i * 7919) % 65536) - 32768;
    const u = new Uint16Array(s.buffer);
    for (const [px, slope, inter] of [
      [s, 1, -1024],
      [u, 1, -32768],
      [s, 0.5, -10],
      [u, 2.5, 3.25],
    ] as const) {
      const got = new Float32Array(n + 5).fill(NaN);
      expect(storedToFloatSimd(px, got, 5, n, slope, inter)).toBe(true);
      const want = new Float32Array(n + 5).fill(NaN);
      for (let i = 0; i < n; i++) want[5 + i] = px[i] * slope + inter;
      expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer))).toBe(0);
    }
  });

  it('maps the padding range to the padding HU, signed and unsigned', () => {
    const n = 1003;
    const s = new Int16Array(n);
    for (let i = 0; i < n; i++) s[i] = ((i * 7919) % 65536) - 32768;
    const u = new Uint16Array(s.buffer);
    for (const [px, pad] of [
      [s, { lo: -2000, hi: -1500, hu: -1024 }],
      [s, { lo: -32768, hi: -32768, hu: -1024 }],
      [u, { lo: 60000, hi: 65535, hu: -3 }],
    ] as const) {
      const got = new Float32Array(n);
      expect(storedToFloatSimd(px, got, 0, n, 1, -1024, pad)).toBe(true);
      let padded = 0;
      for (let i = 0; i < n; i++) {
        const inPad = px[i] >= pad.lo && px[i] <= pad.hi;
        if (inPad) padded++;
        expect(got[i]).toBe(inPad ? pad.hu : px[i] - 1024);
      }
      expect(padded).toBeGreaterThan(0);
    }
  });

  it('keeps BitsStored bits with sign or zero extension (12 of 16 with garbage above HighBit)', () => {
    const px = new Uint16Array(1001);
    for (let i = 0; i < px.length; i++) px[i] = (i * 40503) & 0xffff;
    for (const signed of [true, false]) {
      const got = new Float32Array(px.length);
      expect(storedToFloatSimd(px, got, 0, px.length, 1, 0, undefined, signed, 12)).toBe(true);
      for (let i = 0; i < px.length; i++) {
        let v = px[i] & 0xfff;
        if (signed && v & 0x800) v -= 0x1000;
        expect(got[i]).toBe(v);
      }
    }
  });

  it('grows its memory for large slices and handles views with an offset', () => {
    const big = new Int16Array(1024 * 1024 + 16);
    for (let i = 0; i < big.length; i++) big[i] = (i % 4000) - 2000;
    const view = big.subarray(16);
    const out = new Float32Array(view.length);
    expect(storedToFloatSimd(view, out, 0, view.length, 1, -1024)).toBe(true);
    expect(out[0]).toBe(((16 % 4000) - 2000) - 1024);
    expect(out[view.length - 1]).toBe(view[view.length - 1] - 1024);
  });
});

describe('storedToInt16Simd', () => {
  /** The JS definition: keep BitsStored bits (sign-extended when signed), pad or rescale. */
  function want(px: Int16Array | Uint16Array, slope: number, inter: number, signed: boolean, bits: number, pad?: { lo: number; hi: number; hu: number }): number[] {
    return Array.from(px, (x) => {
      let v = x & ((1 << bits) - 1);
      if (signed && v & (1 << (bits - 1))) v -= 1 << bits;
      return pad && v >= pad.lo && v <= pad.hi ? pad.hu : v * slope + inter;
    });
  }

  it('equals the JS integer result for signed/unsigned, BitsStored, padding, any length and offset', () => {
    const n = 4099; // not a multiple of 8: exercises the JS tail
    const raw = new Uint16Array(n);
    for (let i = 0; i < n; i++) raw[i] = (i * 40503) & 0xffff;
    const cases: [Int16Array | Uint16Array, number, number, boolean, number, { lo: number; hi: number; hu: number } | undefined][] = [
      [new Int16Array(n).map((_, i) => (i * 7919) % 3000 - 1000), 1, -1024, true, 16, undefined],
      [new Uint16Array(n).map((_, i) => (i * 7919) % 4096), 1, -1024, false, 16, undefined],
      [new Int16Array(n).map((_, i) => (i * 7919) % 3000 - 2000), 2, 7, true, 16, { lo: -2000, hi: -1500, hu: -1024 }],
      [raw, 1, -1024, false, 12, undefined],
      [raw, 1, 0, true, 12, { lo: -2048, hi: -2000, hu: -1024 }],
      [raw, -1, 100, false, 12, undefined],
    ];
    for (const [px, slope, inter, signed, bits, pad] of cases) {
      const got = new Int16Array(n + 3).fill(12345);
      expect(storedToInt16Simd(px, got, 3, n, slope, inter, pad, signed, bits)).toBe('ok');
      expect(got[0]).toBe(12345);
      expect(Array.from(got.subarray(3))).toEqual(want(px, slope, inter, signed, bits, pad));
    }
  });

  it('reports HU outside int16 (in the SIMD body or the tail) but not for padded values', () => {
    for (const at of [5, 4098]) {
      const px = new Int16Array(4099).fill(100);
      px[at] = -32768; // -32768 - 1024 does not fit int16
      const out = new Int16Array(px.length);
      expect(storedToInt16Simd(px, out, 0, px.length, 1, -1024)).toBe('range');
      expect(storedToInt16Simd(px, out, 0, px.length, 1, -1024, { lo: -32768, hi: -32768, hu: -1024 })).toBe('ok');
      expect(out[at]).toBe(-1024);
      const u = new Uint16Array(px.length).fill(100);
      u[at] = 40000; // unsigned 40000 does not fit int16 with intercept 0
      expect(storedToInt16Simd(u, out, 0, u.length, 1, 0)).toBe('range');
      expect(storedToInt16Simd(u, out, 0, u.length, 1, -32768)).toBe('ok');
      expect(out[at]).toBe(40000 - 32768);
    }
  });

  it('only takes integer rescales that int32 arithmetic computes exactly', () => {
    expect(isIntegerRescale(1, -1024)).toBe(true);
    expect(isIntegerRescale(0.5, -1024)).toBe(false);
    expect(isIntegerRescale(1, -1024.5)).toBe(false);
    expect(isIntegerRescale(100000, 0)).toBe(false);
    expect(storedToInt16Simd(new Int16Array(8), new Int16Array(8), 0, 8, 0.5, 0)).toBe('unavailable');
  });
});
