import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generatePhantom, phantomTruth } from '../../src/research/phantom/index.js';
import { drawAcquisition } from '../../src/research/phantom/hard/acquisition.js';
import { drawHardSpec } from '../../src/research/phantom/hard/draw.js';
import { HARD_FEATURES } from '../../src/research/phantom/hard/spec.js';
import type { PhantomOptions } from '../../src/research/phantom/types.js';
import { isVbmdError } from '../../src/util/errors.js';

function sha(p: ReturnType<typeof generatePhantom>): { hu: string; truth: string } {
  const hu = p.loaded.volume.hu;
  return {
    hu: createHash('sha256').update(Buffer.from(hu.buffer, hu.byteOffset, hu.byteLength)).digest('hex').slice(0, 16),
    truth: createHash('sha256').update(JSON.stringify(p.truth)).update(JSON.stringify(p.loaded.meta)).digest('hex').slice(0, 16),
  };
}

const TINY_HARD: PhantomOptions = { preset: 'hard', size: 96, sliceThicknessMm: 4 };

describe('default preset', () => {
  // sha256 prefixes of voxels and of truth+meta, recorded before the hard preset existed (commit c126f33). The
  // shipped model was trained on default phantoms: any change here changes its training data.
  const pinned: [string, PhantomOptions, string, string][] = [
    ['128 px 3 mm', { size: 128, pixelSpacingMm: 2.5, sliceThicknessMm: 3, seed: 7 }, 'fe340ea06b76fd98', '2607e58936686446'],
    [
      'lesions, fracture, contrast',
      { size: 128, pixelSpacingMm: 2.5, sliceThicknessMm: 3, seed: 21, lesions: [{ level: 'T11', kind: 'blastic' }, { level: 'L2' }], fractures: [{ level: 'L1' }], contrast: true },
      '3fca230b21cef71a',
      '7604ff21d51a5fe7',
    ],
    ['C7-S1 at 80 kVp, no noise', { seed: 43, size: 160, pixelSpacingMm: 2.4, sliceThicknessMm: 2.5, levels: 'C7-S1', kvp: 80, noiseHu: 0 }, '6b75b84e3301db3f', '9be258f7c2aecb5f'],
  ];
  it.each(pinned)('is voxel- and truth-identical to before the hard preset (%s)', (_name, o, hu, truth) => {
    const p = generatePhantom(o);
    expect(sha(p)).toEqual({ hu, truth });
    expect(p.loaded.volume.hu).toBeInstanceOf(Float32Array);
    expect(p.truth.preset).toBeUndefined();
    expect(p.truth.hard).toBeUndefined();
    expect(generatePhantom({ ...o, preset: 'default' }).truth).toEqual(p.truth);
  });
});

describe('hard preset', () => {
  it('is deterministic by seed and differs between seeds', () => {
    const a = generatePhantom({ ...TINY_HARD, seed: 20101 });
    const b = generatePhantom({ ...TINY_HARD, seed: 20101 });
    const c = generatePhantom({ ...TINY_HARD, seed: 20102 });
    expect(sha(a)).toEqual(sha(b));
    expect(a.truth).toEqual(b.truth);
    expect(sha(a).hu).not.toBe(sha(c).hu);
    expect(a.loaded.volume.hu).toBeInstanceOf(Int16Array);
    expect(phantomTruth.parse(JSON.parse(JSON.stringify(a.truth)))).toEqual(JSON.parse(JSON.stringify(a.truth)));
    expect(a.truth.preset).toBe('hard');
    expect(a.truth.options.preset).toBe('hard');
  });

  it('draws each feature from its own stream: forcing one leaves the others as they were', () => {
    for (let seed = 20200; seed < 20230; seed++) {
      const view = ['T10', 'T11', 'T12', 'L1', 'L2', 'L3', 'L4', 'L5', 'S1'] as const;
      const plain = drawHardSpec(seed, undefined, [...view]);
      const forced = drawHardSpec(seed, { always: ['screws', 'cement'] }, [...view]);
      expect(forced.fractures).toEqual(plain.fractures);
      expect(forced.degeneration).toEqual(plain.degeneration);
      expect(forced.lesions).toEqual(plain.lesions);
      expect(forced.curvature).toEqual(plain.curvature);
      expect(forced.contrast).toEqual(plain.contrast);
      expect(forced.features).toEqual(expect.arrayContaining(['screws', 'cement']));
      const none = drawHardSpec(seed, { only: [] }, [...view]);
      expect(none.features).toEqual([]);
    }
  });

  it('draws every feature at some seed and keeps acquisitions within memory bounds', () => {
    const seen = new Set<string>();
    for (let seed = 21000; seed < 21300; seed++) {
      for (const f of drawHardSpec(seed, undefined, ['T10', 'T11', 'T12', 'L1', 'L2']).features) seen.add(f);
      const acq = drawAcquisition(seed, undefined, {}, null, () => 560);
      // A 560 mm chest-abdomen range stays under 480 slices; matrices 512 or a ~360 small field.
      expect(Math.ceil(560 / acq.sliceSpacingMm)).toBeLessThanOrEqual(480);
      expect(acq.fov.matrix).toBeLessThanOrEqual(512);
      expect(acq.fov.pixelMm).toBeGreaterThanOrEqual(0.5);
      expect(acq.fov.pixelMm).toBeLessThanOrEqual(1);
      expect(acq.sliceThicknessMm).toBeGreaterThanOrEqual(0.625);
      expect(acq.sliceThicknessMm).toBeLessThanOrEqual(5);
      // Fat noise 15-40 HU at 2 mm, scaled by 1/sqrt(thickness).
      expect(acq.noiseHu).toBeCloseTo(Math.min(90, acq.noise2mmHu * Math.sqrt(2 / acq.sliceThicknessMm)), 6);
      expect([1023, 3071]).toContain(acq.clipMaxHu);
    }
    expect([...seen].sort()).toEqual([...HARD_FEATURES].sort());
  });

  it('rejects unknown presets and features with a clear error', () => {
    for (const o of [{ preset: 'harder' as 'hard' }, { preset: 'hard' as const, hard: { only: ['wings' as 'girdle'] } }, { preset: 'hard' as const, hard: { arms: 'sideways' as 'up' } }]) {
      let err: unknown;
      try {
        generatePhantom({ ...TINY_HARD, ...o });
      } catch (e) {
        err = e;
      }
      expect(isVbmdError(err), JSON.stringify(o)).toBe(true);
    }
  });
});
