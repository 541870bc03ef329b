import { describe, expect, it } from 'vitest';
import { calibrate, hounsfieldToVbmd, internalCalibration, referenceForKvp } from '../../src/bmd/calibration/index.js';
import type { LoadedVolume } from '../../src/imaging/volume.js';
import { generatePhantom } from '../../src/research/phantom/index.js';
import { median, sampleCylinder } from '../phantom/roi.js';

// Phantoms at 2.5 mm in-plane keep the test fast; the tissue layers are still several voxels thick.
const OPTS = { size: 160, pixelSpacingMm: 2.5, sliceThicknessMm: 3, levels: 'T11-L3' } as const;

describe('phantomless internal calibration on phantoms with known truth', () => {
  for (const seed of [101, 102, 103]) {
    it(`recovers the calibration line within tolerance (seed ${seed})`, () => {
      const p = generatePhantom({ ...OPTS, seed, noiseHu: 15 });
      const centers = p.truth.levels.filter((l) => l.fullyCovered).map((l) => l.centerMm);
      const cal = calibrate({ loaded: p.loaded, vertebralBodyCentersMm: centers });
      expect(cal.method).toBe('phantomless-internal');
      expect(cal.uncalibrated).toBeUndefined();
      const tissues = cal.references.tissues as Record<string, { measuredHu: number }>;
      // Measured reference tissues agree with what the phantom drew (cupping and PSF explain the rest).
      expect(Math.abs(tissues.air.measuredHu - p.truth.tissueHu.air)).toBeLessThan(10);
      expect(Math.abs(tissues.fat.measuredHu - p.truth.tissueHu.fat)).toBeLessThan(8);
      expect(Math.abs(tissues.muscle.measuredHu - p.truth.tissueHu.muscle)).toBeLessThan(8);
      if (tissues.blood) expect(Math.abs(tissues.blood.measuredHu - p.truth.tissueHu.blood)).toBeLessThan(10);
      expect(cal.references.r2).toBeGreaterThan(0.99);
      expect(Math.abs(cal.slope / p.truth.calibration.slope - 1)).toBeLessThan(0.08);
      expect(Math.abs(cal.intercept - p.truth.calibration.intercept)).toBeLessThan(14);
      // The resulting vBMD at each truth centre is within 15 mg/cm3 (acceptance is MAE <= 8 over 50 studies).
      for (const l of p.truth.levels.filter((q) => q.fullyCovered)) {
        const hu = median(sampleCylinder(p.loaded.volume, l.centerMm, Math.min(l.halfWidthMm, l.halfDepthMm) * 0.5, 3));
        expect(Math.abs(hounsfieldToVbmd(hu, cal) - l.vbmdMgCm3), l.level).toBeLessThan(15);
      }
    });
  }

  it('skips aortic blood when the scan is contrast-enhanced and says why', () => {
    const p = generatePhantom({ ...OPTS, seed: 104, noiseHu: 15, contrast: true });
    const centers = p.truth.levels.filter((l) => l.fullyCovered).map((l) => l.centerMm);
    const cal = calibrate({ loaded: p.loaded, vertebralBodyCentersMm: centers });
    expect(cal.method).toBe('phantomless-internal');
    expect((cal.references.tissues as Record<string, unknown>).blood).toBeUndefined();
    expect(String((cal.references.skipped as Record<string, string>).blood)).toMatch(/contrast/);
    expect(cal.references.contrast).toBe(true);
    // Contrast is detected from the image too, not only from the DICOM tag.
    const untagged: LoadedVolume = { volume: p.loaded.volume, meta: { ...p.loaded.meta, contrastAgent: undefined } };
    const cal2 = calibrate({ loaded: untagged, vertebralBodyCentersMm: centers });
    expect(String((cal2.references.skipped as Record<string, string>).blood)).toMatch(/contrast-enhanced \(\d+/);
  });
});

describe('nominal fallback', () => {
  it('is flagged uncalibrated when there is nothing to calibrate from', () => {
    const p = generatePhantom({ size: 64, pixelSpacingMm: 6, sliceThicknessMm: 5, seed: 3, levels: 'L1-L2', kvp: 100 });
    const cal = calibrate({ loaded: p.loaded, vertebralBodyCentersMm: [] });
    expect(cal).toMatchObject({ method: 'nominal', uncalibrated: true, slope: referenceForKvp(100).nominalSlope });
    expect(String(cal.references.reason)).toMatch(/no vertebral bodies/);
  });

  it('assumes 120 kVp when the series does not say, and says so', () => {
    const water: LoadedVolume = {
      volume: { hu: new Float32Array(32 * 32 * 3), dims: [32, 32, 3], spacingMm: [1, 1, 1], originMm: [0, 0, 0], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] },
      meta: { kind: 'nifti', source: 'water.nii' },
    };
    const cal = calibrate({ loaded: water, vertebralBodyCentersMm: [[16, 16, 1]] });
    expect(cal.method).toBe('nominal');
    expect(cal.uncalibrated).toBe(true);
    expect(cal.references.kvpAssumed).toBe(true);
    expect(cal.slope).toBe(referenceForKvp(120).nominalSlope);
  });

  it('rejects an implausible internal fit and falls back to nominal with the QC reason', () => {
    const ref = referenceForKvp(120);
    const cal = internalCalibration(
      { air: { medianHu: -1000, slices: 3 }, fat: { medianHu: 300, slices: 3 }, muscle: { medianHu: 420, slices: 3 }, notes: [] },
      ref,
      false,
      false,
    );
    expect(cal).toMatchObject({ method: 'nominal', uncalibrated: true });
    expect(String(cal.references.reason)).toMatch(/internal calibration rejected/);
    expect(cal.references.rejectedFit).toBeTruthy();
  });

  it('fits the offset only (nominal slope) when no air is available', () => {
    const ref = referenceForKvp(120);
    const cal = internalCalibration({ fat: { medianHu: -95, slices: 2 }, muscle: { medianHu: 54, slices: 2 }, notes: [] }, ref, false, false);
    expect(cal.method).toBe('phantomless-internal');
    expect(cal.slope).toBe(ref.nominalSlope);
    expect(cal.intercept).toBeCloseTo(ref.nominalIntercept + 5, 5);
    expect(String(cal.references.fit)).toMatch(/offset only/);
  });
});
