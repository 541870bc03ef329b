import { describe, expect, it } from 'vitest';
import type { LoadedVolume, Vec3 } from '../../src/imaging/volume.js';
import { vbmdReport, REPORT_SCHEMA, type LevelResult, type VbmdReport } from '../../src/bmd/report.js';
import { CLASS_ORDER, PATCH_VOXELS } from '../../src/model/contract.js';
import { DISAGREEMENT_MARGIN_MG_CM3, enrichReportWithModel, READOUT_CROSS_CHECK_MG_CM3 } from '../../src/model/enrich-report.js';
import { MIN_MODEL_ROI_VOXELS, softmaxClasses } from '../../src/model/infer-levels.js';
import type { ModelInference, ModelOutputs } from '../../src/model/model-runner.js';

/**
 * Unit test of the report hook with a fake network (the real one is covered in model-runner.test.ts): the
 * ROI head marks a centred cube of `roiHalf` voxels each side, so the readout has a known answer on a volume of
 * uniform density.
 */
const N = PATCH_VOXELS;
const cal = { slope: 1.2, intercept: 10 };
const TRUE_MG_CM3 = 123;

function uniformVolume(mgCm3: number): LoadedVolume {
  const dims: Vec3 = [80, 80, 80];
  const hu = new Float32Array(dims[0] * dims[1] * dims[2]).fill(cal.intercept + cal.slope * mgCm3);
  return {
    volume: { hu, dims, spacingMm: [1, 1, 1], originMm: [-40, -40, -40], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] },
    meta: { kind: 'phantom', source: 'test' },
  };
}

function fakeModel(roiHalf: number, regressionOffset = 0): ModelInference & { calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    model: { name: 'fake', version: '0.0.0', sha256: 'f'.repeat(64) },
    async infer(input: Float32Array, n: number): Promise<ModelOutputs> {
      calls.push(n);
      const roi = new Float32Array(n * N ** 3).fill(-5);
      const c = N / 2;
      for (let b = 0; b < n; b++)
        for (let d = c - roiHalf; d < c + roiHalf; d++)
          for (let h = c - roiHalf; h < c + roiHalf; h++)
            for (let w = c - roiHalf; w < c + roiHalf; w++) roi[b * N ** 3 + d * N * N + h * N + w] = 5;
      // Regression head reads the mean network input back in mg/cm3 (input = density / 300).
      const vb = new Float32Array(n).map((_, b) => (input.subarray(b * N ** 3, (b + 1) * N ** 3).reduce((s, x) => s + x, 0) / N ** 3) * 300 + regressionOffset);
      const cls = new Float32Array(n * 3).map((_, i) => (i % 3 === 2 ? 2 : 0));
      return { n, roiLogits: roi, vbmdMgCm3: vb, classLogits: cls, runMs: 0 };
    },
  };
}

function level(name: LevelResult['level'], vbmd: number | null, extra: Partial<LevelResult> = {}): LevelResult {
  return { level: name, labelConfidence: 0.9, centerMm: [0, 0, 0], roiHuMedian: null, roiHuMean: null, roiVoxels: 100, vbmd, included: vbmd !== null, exclusionReason: null, ...extra };
}

function report(levels: LevelResult[]): VbmdReport {
  return {
    schema: REPORT_SCHEMA,
    input: { kind: 'phantom', dims: [80, 80, 80], spacingMm: [1, 1, 1], contrast: false },
    levels,
    summary: { vbmd: 115, levels: ['L1', 'L2'], basis: 'lumbar', category: 'osteopenia' },
    calibration: { method: 'phantom', slope: cal.slope, intercept: cal.intercept, references: {} },
    qc: { warnings: [] },
    model: null,
    timingsMs: {},
  };
}

describe('enrichReportWithModel', () => {
  it('reads the mean calibrated density over the predicted ROI, keeps the geometric value, and validates', async () => {
    const m = fakeModel(6);
    const r = await enrichReportWithModel(report([level('L1', 120), level('L2', 110)]), uniformVolume(TRUE_MG_CM3), m, { source: 'geometric' });
    expect(m.calls).toEqual([2]); // one batch per study
    expect(r.model).toEqual(m.model);
    for (const l of r.levels) {
      expect(l.modelVbmd).toBeCloseTo(TRUE_MG_CM3, 3);
      expect(l.modelRoiVoxels).toBe(12 ** 3);
      expect(l.modelRegressionVbmd).toBeCloseTo(TRUE_MG_CM3, 1);
      expect(l.roiSource).toBe('geometric');
      const p = l.modelClassProbabilities!;
      expect(p.osteoporosis).toBeCloseTo(Math.exp(2) / (2 + Math.exp(2)), 4);
      expect(Object.keys(p)).toEqual([...CLASS_ORDER]);
    }
    expect(r.levels.map((l) => l.vbmd)).toEqual([120, 110]);
    expect(r.levels.map((l) => l.geometricVbmd)).toEqual([120, 110]);
    expect(r.summary.vbmd).toBe(115);
    expect(() => vbmdReport.parse(r)).not.toThrow();
  });

  it('warns on a level where model and geometric ROI differ by more than the margin, only there', async () => {
    const r = await enrichReportWithModel(report([level('L1', TRUE_MG_CM3 - DISAGREEMENT_MARGIN_MG_CM3 - 1), level('L2', TRUE_MG_CM3 - DISAGREEMENT_MARGIN_MG_CM3 + 1)]), uniformVolume(TRUE_MG_CM3), fakeModel(6), { source: 'geometric' });
    const w = r.qc.warnings.filter((x) => /differ by more than/.test(x));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^L1:/);
  });

  it('uses the model value for vbmd and the summary when the source is the model, never for an excluded level', async () => {
    const r = await enrichReportWithModel(
      report([level('L1', 110), level('L2', 114), level('L3', 115, { included: false, exclusionReason: 'lesion' })]),
      uniformVolume(TRUE_MG_CM3),
      fakeModel(6),
      { source: 'model' },
    );
    expect(r.levels.map((l) => l.roiSource)).toEqual(['model', 'model', 'model']);
    expect(r.levels[0].vbmd).toBeCloseTo(TRUE_MG_CM3, 1);
    expect(r.levels[0].geometricVbmd).toBe(110);
    expect(r.levels[2].included).toBe(false);
    expect(r.summary.levels).toEqual(['L1', 'L2']);
    expect(r.summary.vbmd).toBeCloseTo(TRUE_MG_CM3, 1);
    expect(r.summary.category).toBe('normal');
  });

  it('keeps the model value where it disagrees beyond the margin, and says so in a warning with both values', async () => {
    const far = TRUE_MG_CM3 - DISAGREEMENT_MARGIN_MG_CM3 - 5;
    const r = await enrichReportWithModel(report([level('L1', far), level('L2', 120)]), uniformVolume(TRUE_MG_CM3), fakeModel(6), { source: 'model' });
    expect(r.levels.map((l) => l.roiSource)).toEqual(['model', 'model']);
    expect(r.levels[0].vbmd).toBeCloseTo(TRUE_MG_CM3, 1);
    expect(r.levels[0].geometricVbmd).toBe(far);
    const w = r.qc.warnings.filter((x) => /differ by more than/.test(x));
    expect(w).toHaveLength(1);
    expect(w[0]).toContain(`geometric ROI ${far} mg/cm3`);
    expect(w[0]).toContain('the model value is reported');
  });

  it('warns when the regression head does not cross-check the ROI mean', async () => {
    const ok = await enrichReportWithModel(report([level('L1', 120)]), uniformVolume(TRUE_MG_CM3), fakeModel(6, READOUT_CROSS_CHECK_MG_CM3 - 2));
    expect(ok.qc.warnings.some((w) => /regression head/.test(w))).toBe(false);
    const bad = await enrichReportWithModel(report([level('L1', 120)]), uniformVolume(TRUE_MG_CM3), fakeModel(6, READOUT_CROSS_CHECK_MG_CM3 + 2));
    expect(bad.qc.warnings.filter((w) => /^L1: the model's ROI mean .* regression head/.test(w))).toHaveLength(1);
  });

  it('warns when the class head gives the band of the reported value a low probability', async () => {
    // The fake head puts ~0.79 on osteoporosis and ~0.11 on the other two; the value 123 is "normal".
    const r = await enrichReportWithModel(report([level('L1', 120)]), uniformVolume(TRUE_MG_CM3), fakeModel(6));
    expect(r.qc.warnings.filter((w) => /^L1: the model's class head gives normal/.test(w))).toHaveLength(1);
    const low = await enrichReportWithModel(report([level('L1', 60)]), uniformVolume(60), fakeModel(6));
    expect(low.qc.warnings.some((w) => /class head/.test(w))).toBe(false);
  });

  it('reports no model value when the predicted ROI is too small, and keeps the geometric one', async () => {
    const tiny = 2; // 4^3 = 64 voxels < MIN_MODEL_ROI_VOXELS
    expect(8 * tiny ** 3).toBeLessThan(MIN_MODEL_ROI_VOXELS);
    const r = await enrichReportWithModel(report([level('L1', 100)]), uniformVolume(TRUE_MG_CM3), fakeModel(tiny), { source: 'model' });
    expect(r.levels[0].modelVbmd).toBeNull();
    expect(r.levels[0].vbmd).toBe(100);
    expect(r.levels[0].roiSource).toBe('geometric');
    expect(r.qc.warnings.some((x) => /no measurable trabecular region/.test(x))).toBe(true);
  });

  it('softmax is stable for large logits', () => {
    const p = softmaxClasses(new Float32Array([1000, 1000, -1000]));
    expect(p.normal).toBeCloseTo(0.5, 10);
    expect(p.osteoporosis).toBe(0);
  });
});
