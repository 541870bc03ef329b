import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generatePhantom, parseLevelRange, phantomTruth } from '../../src/research/phantom/index.js';
import { isVbmdError } from '../../src/util/errors.js';
import { buildPerson } from '../../src/research/phantom/anatomy.js';
import { Rng, subSeed } from '../../src/research/phantom/random.js';
import { median, nearestHu, sampleCylinder } from './roi.js';

const SMALL = { size: 128, pixelSpacingMm: 2.5, sliceThicknessMm: 3 } as const;

function hashHu(hu: Float32Array | Int16Array): string {
  return createHash('sha256').update(Buffer.from(hu.buffer, hu.byteOffset, hu.byteLength)).digest('hex');
}

describe('generatePhantom', () => {
  it('is deterministic by seed and varies with it', () => {
    const a = generatePhantom({ ...SMALL, seed: 7 });
    const b = generatePhantom({ ...SMALL, seed: 7 });
    const c = generatePhantom({ ...SMALL, seed: 8 });
    expect(hashHu(a.loaded.volume.hu)).toBe(hashHu(b.loaded.volume.hu));
    expect(a.truth).toEqual(b.truth);
    expect(a.loaded.meta.studyInstanceUid).toBe(b.loaded.meta.studyInstanceUid);
    expect(hashHu(a.loaded.volume.hu)).not.toBe(hashHu(c.loaded.volume.hu));
    expect(a.truth.levels.map((l) => l.vbmdMgCm3)).not.toEqual(c.truth.levels.map((l) => l.vbmdMgCm3));
  });

  it('produces a volume and a schema-valid truth that agree on geometry', () => {
    const p = generatePhantom({ ...SMALL, seed: 3, levels: 'T10-L4', noiseHu: 15 });
    const v = p.loaded.volume;
    expect(v.dims[0] * v.dims[1] * v.dims[2]).toBe(v.hu.length);
    expect(v.spacingMm).toEqual([2.5, 2.5, 3]);
    expect(p.loaded.meta.kind).toBe('phantom');
    expect(p.loaded.meta.kvp).toBe(p.truth.scanner.kvp);
    expect(phantomTruth.parse(JSON.parse(JSON.stringify(p.truth)))).toBeTruthy();
    const covered = p.truth.levels.filter((l) => l.fullyCovered).map((l) => l.level);
    expect(covered).toEqual(parseLevelRange('T10-L4'));
    // Cranial to caudal, z decreasing; bodies taller caudally (T10 vs L3) and 15-32 mm tall.
    const zs = p.truth.levels.map((l) => l.centerMm[2]);
    for (let i = 1; i < zs.length; i++) expect(zs[i]).toBeLessThan(zs[i - 1]);
    const h = (lv: string): number => p.truth.levels.find((l) => l.level === lv)!.heightsMm.posterior;
    expect(h('L3')).toBeGreaterThan(h('T10'));
    for (const l of p.truth.levels) {
      expect(l.heightsMm.posterior).toBeGreaterThan(15);
      expect(l.heightsMm.posterior).toBeLessThan(32);
      expect(l.halfWidthMm * 2).toBeGreaterThan(28);
      expect(l.halfWidthMm * 2).toBeLessThan(58);
    }
    // Spine curvature: centres are not on one straight line in the sagittal plane.
    const ys = p.truth.levels.map((l) => l.centerMm[1]);
    expect(Math.max(...ys) - Math.min(...ys)).toBeGreaterThan(2);
    // Calibration line in the documented range.
    expect(p.truth.calibration.slope).toBeGreaterThan(0.95);
    expect(p.truth.calibration.slope).toBeLessThan(1.7);
    expect(Math.abs(p.truth.calibration.intercept)).toBeLessThan(20);
  });

  it('puts trabecular bone of the truth density at each truth centre (HU = a + b*vBMD)', () => {
    const p = generatePhantom({ ...SMALL, seed: 11, noiseHu: 8, vbmdMgCm3: { L1: 60, L2: 150 } });
    const { slope, intercept } = p.truth.calibration;
    for (const l of p.truth.levels.filter((q) => q.fullyCovered)) {
      const roi = sampleCylinder(p.loaded.volume, l.centerMm, Math.min(l.halfWidthMm, l.halfDepthMm) * 0.45, 3);
      expect(roi.length).toBeGreaterThan(10);
      const hu = median(roi);
      expect(Math.abs(hu - l.trabecularHu)).toBeLessThan(12);
      // truth HU differs from the phantom line only by cupping (no contrast here).
      expect(Math.abs(l.trabecularHu - (intercept + slope * l.vbmdMgCm3))).toBeLessThan(4);
    }
    const l1 = p.truth.levels.find((l) => l.level === 'L1')!;
    const l2 = p.truth.levels.find((l) => l.level === 'L2')!;
    expect(l1.vbmdMgCm3).toBe(60);
    expect(l2.vbmdMgCm3).toBe(150);
  });

  it('puts ribs on thoracic levels only (T12 last) and none on lumbar levels', () => {
    const p = generatePhantom({ ...SMALL, seed: 5, levels: 'T9-L3', ribAnomalies: false, noiseHu: 5 });
    expect(p.truth.ribPairs).toBe(12);
    for (const l of p.truth.levels) expect(l.hasRibs).toBe(l.level.startsWith('T'));
    const v = p.loaded.volume;
    // Bone lateral to the spine at the rib angles (52-80 mm off the midline, beyond the longest lumbar transverse process).
    const lateralBone = (lv: string): number => {
      const l = p.truth.levels.find((q) => q.level === lv)!;
      let n = 0;
      for (const side of [-1, 1]) {
        for (let dx = 52.5; dx <= 80; dx += 2.5) {
          for (let dy = 0; dy <= 45; dy += 2.5) {
            for (let dz = -6; dz <= 6; dz += 3) {
              if (nearestHu(v, [l.centerMm[0] + side * dx, l.centerMm[1] + dy, l.centerMm[2] + dz]) > 250) n++;
            }
          }
        }
      }
      return n;
    };
    for (const lv of ['T9', 'T10', 'T11', 'T12']) expect(lateralBone(lv), lv).toBeGreaterThan(0);
    for (const lv of ['L2', 'L3']) expect(lateralBone(lv), lv).toBe(0);
  });

  it('models a rare 11 or 13 rib pairs only when allowed, and labels it in the truth', () => {
    const seen = new Map<number, number>();
    for (let seed = 0; seed < 1500; seed++) {
      const person = buildPerson(new Rng(subSeed(seed, 'person')), { vbmdOverrides: {}, lesions: [], fractures: [], ribAnomalies: true });
      seen.set(person.ribPairs, (seen.get(person.ribPairs) ?? 0) + 1);
      const has = (lv: string): boolean => person.vertebrae.find((v) => v.level === lv)!.hasRibs;
      expect(has('T12')).toBe(person.ribPairs >= 12);
      expect(has('L1')).toBe(person.ribPairs === 13);
      expect(has('T11')).toBe(true);
      expect(person.ribs.length).toBe(2 * person.ribPairs);
    }
    expect(seen.get(12)!).toBeGreaterThan(1400);
    expect(seen.get(11) ?? 0).toBeGreaterThan(0);
    expect(seen.get(13) ?? 0).toBeGreaterThan(0);
    const off = buildPerson(new Rng(1), { vbmdOverrides: {}, lesions: [], fractures: [], ribAnomalies: false });
    expect(off.ribPairs).toBe(12);
    // The truth file reports the count and per-level rib bearing for the levels in view.
    const p = generatePhantom({ size: 32, pixelSpacingMm: 12, sliceThicknessMm: 10, levels: 'T12-L1', seed: 2, noiseHu: 0 });
    expect(p.truth.levels.find((l) => l.level === 'T12')!.hasRibs).toBe(p.truth.ribPairs >= 12);
  });

  it('makes blastic lesions dense and lytic lesions lucent where asked', () => {
    const p = generatePhantom({ ...SMALL, seed: 21, noiseHu: 8, lesions: [{ level: 'T11', kind: 'blastic' }, { level: 'L2', kind: 'lytic' }], vbmdMgCm3: { T10: 120, T11: 120, T12: 120, L1: 120, L2: 120, L3: 120 } });
    const lv = (name: string) => p.truth.levels.find((l) => l.level === name)!;
    expect(lv('T11').lesion?.kind).toBe('blastic');
    expect(lv('L2').lesion?.kind).toBe('lytic');
    expect(lv('L1').lesion).toBeNull();
    const at = (name: string): number => {
      const l = lv(name);
      const c = l.lesion ? l.lesion.centerMm : l.centerMm;
      const r = l.lesion ? l.lesion.radiusMm * 0.6 : 5;
      return median(sampleCylinder(p.loaded.volume, c, r, 2));
    };
    expect(at('T11') - at('T12')).toBeGreaterThan(150);
    expect(at('L1') - at('L2')).toBeGreaterThan(50);
  });

  it('wedges a fractured body anteriorly by the requested height loss', () => {
    const p = generatePhantom({ size: 96, pixelSpacingMm: 2, sliceThicknessMm: 1, seed: 4, levels: 'T12-L2', noiseHu: 4, vbmdMgCm3: { T12: 200, L1: 200, L2: 200 }, fractures: [{ level: 'L1', heightLossFraction: 0.35 }] });
    const l1 = p.truth.levels.find((l) => l.level === 'L1')!;
    expect(l1.fracture?.heightLossFraction).toBe(0.35);
    expect(l1.heightsMm.anterior / l1.heightsMm.posterior).toBeCloseTo(0.65, 2);
    // Measure bone extent along z on an anterior and a posterior column through the body.
    const v = p.loaded.volume;
    const tilt = (l1.tiltDeg * Math.PI) / 180;
    // Columns 40 % of the half-width off the midline, clear of the basivertebral vein.
    const extent = (dyMm: number): number => {
      let n = 0;
      for (let dz = -20; dz <= 20; dz += 1) {
        const hu = nearestHu(v, [l1.centerMm[0] + 0.4 * l1.halfWidthMm, l1.centerMm[1] + dyMm * Math.cos(tilt) + dz * Math.sin(tilt), l1.centerMm[2] - dyMm * Math.sin(tilt) + dz * Math.cos(tilt)]);
        if (hu > 170) n++;
      }
      return n;
    };
    const ant = extent(-0.6 * l1.halfDepthMm);
    const post = extent(0.5 * l1.halfDepthMm);
    expect(ant / post).toBeLessThan(0.85);
    const t12 = p.truth.levels.find((l) => l.level === 'T12')!;
    expect(t12.fracture).toBeNull();
  });

  it('enhances the aorta with contrast and flags it in meta and truth', () => {
    const plain = generatePhantom({ ...SMALL, seed: 9, noiseHu: 8 });
    const enh = generatePhantom({ ...SMALL, seed: 9, noiseHu: 8, contrast: true });
    const aortaHu = (p: typeof plain): number => {
      const l = p.truth.levels.find((q) => q.level === 'L1')!;
      return median(sampleCylinder(p.loaded.volume, l.aortaCenterMm, l.aortaRadiusMm * 0.5, 2));
    };
    expect(aortaHu(plain)).toBeGreaterThan(20);
    expect(aortaHu(plain)).toBeLessThan(65);
    expect(aortaHu(enh)).toBeGreaterThan(130);
    expect(enh.loaded.meta.contrastAgent).toBeTruthy();
    expect(plain.loaded.meta.contrastAgent).toBeUndefined();
    expect(enh.truth.contrast.enabled).toBe(true);
    expect(enh.truth.contrast.trabecularDeltaHu).toBeGreaterThan(0);
  });

  it('rejects bad options with a clear error', () => {
    const bad = [{ levels: 'L3-T8' }, { levels: 'X1' }, { lesions: [{ level: 'Q9' as 'L1' }] }, { size: 0 }, { seed: 1.5 }, { vbmdMgCm3: { L1: -5 } }];
    for (const o of bad) {
      let err: unknown;
      try {
        generatePhantom({ ...SMALL, ...o });
      } catch (e) {
        err = e;
      }
      expect(isVbmdError(err), JSON.stringify(o)).toBe(true);
    }
  });
});
