import { describe, expect, it } from 'vitest';
import { outlineOrColumn, type BodySizeAlongSpine } from '../../src/bmd/spine/body-outline.js';

describe("a level's body outline against the column", () => {
  const column: BodySizeAlongSpine = {
    depthMm: Float32Array.of(20),
    widthMm: Float32Array.of(28),
    uCenterMm: Float32Array.of(-2),
    vCenterMm: Float32Array.of(0.5),
  };
  it("keeps an outline near the column's running size, and takes the column's centre and size for one far deeper or shallower", () => {
    const near = { uCenterMm: -3, vCenterMm: 1, depthMm: 24, widthMm: 30, outsideFraction: 0 };
    expect(outlineOrColumn(near, column, 0)).toBe(near);
    // A T2 read 34 mm deep where the column is 20: the great vessels in front were taken in.
    const deep = { uCenterMm: -13, vCenterMm: 0.3, depthMm: 34, widthMm: 29, outsideFraction: 0.01 };
    expect(outlineOrColumn(deep, column, 0)).toEqual({ uCenterMm: -2, vCenterMm: 0.5, depthMm: 20, widthMm: 28, outsideFraction: 0.01 });
    expect(outlineOrColumn({ ...near, depthMm: 13 }, column, 0).depthMm).toBe(20);
    // No outline measured: nothing to judge, the caller falls back itself.
    const none = { ...near, depthMm: NaN };
    expect(outlineOrColumn(none, column, 0)).toBe(none);
  });

  it('takes the column for an outline far deeper than its own width, even where the column agrees with it', () => {
    // T1 read 32 mm deep and 26 wide at the column's top, where the column's running median is as deep: no body is.
    const top: BodySizeAlongSpine = { depthMm: Float32Array.of(30), widthMm: Float32Array.of(27), uCenterMm: Float32Array.of(1), vCenterMm: Float32Array.of(0) };
    const tooDeep = { uCenterMm: 4.5, vCenterMm: 0.2, depthMm: 32, widthMm: 26, outsideFraction: 0 };
    expect(outlineOrColumn(tooDeep, top, 0).uCenterMm).toBe(1);
    // A mid-thoracic body about as deep as wide stays.
    const heart = { uCenterMm: 2, vCenterMm: 0, depthMm: 28, widthMm: 27, outsideFraction: 0 };
    expect(outlineOrColumn(heart, top, 0)).toBe(heart);
  });
});
