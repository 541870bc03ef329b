import { describe, expect, it } from 'vitest';
import { storedToFloatSimd } from '../../src/imaging/hu-simd.js';

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
