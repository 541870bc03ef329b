import type { LevelResult, VbmdReport } from '../../src/bmd/report.js';
import { vbmdReport } from '../../src/bmd/report.js';

/** Literal vbmd.report/1 documents for the FHIR tests (the engine is built in parallel); each is checked
 * against the zod schema so the tests break if the contract changes. */

function level(level: LevelResult['level'], vbmd: number | null, extra: Partial<LevelResult> = {}): LevelResult {
  return {
    level,
    labelConfidence: 0.95,
    centerMm: [0, -20, -100],
    roiHuMedian: vbmd === null ? null : vbmd * 1.1 - 5,
    roiHuMean: vbmd === null ? null : vbmd * 1.1 - 4,
    roiHuSd: 20,
    roiVoxels: 900,
    vbmd,
    included: true,
    exclusionReason: null,
    ...extra,
  };
}

/** Abdominal CT, L1-L2 measured, model with class probabilities, L3 excluded for a fracture. */
export function lumbarOsteoporosisReport(): VbmdReport {
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: {
      kind: 'dicomweb',
      studyInstanceUid: '1.2.826.0.1.3680043.8.498.1001',
      seriesInstanceUid: '1.2.826.0.1.3680043.8.498.1001.2',
      patientId: 'DEMO-0001',
      accessionNumber: 'ACC1001',
      acquisitionDateTime: '2024-03-05T09:41:12+01:00',
      dims: [512, 512, 300],
      spacingMm: [0.7, 0.7, 1.25],
      kvp: 120,
      contrast: false,
    },
    levels: [
      level('T12', 74.2, { modelClassProbabilities: { normal: 0.05, osteopenia: 0.25, osteoporosis: 0.7 } }),
      level('L1', 71.3, { modelClassProbabilities: { normal: 0.03, osteopenia: 0.17, osteoporosis: 0.8 }, roiSource: 'model' }),
      level('L2', 76.9, { modelClassProbabilities: { normal: 0.05, osteopenia: 0.35, osteoporosis: 0.6 }, roiSource: 'model' }),
      level('L3', 61.0, {
        included: false,
        exclusionReason: 'fracture',
        exclusionDetail: 'anterior height loss 31%',
        heightsMm: { anterior: 17.9, middle: 22.1, posterior: 26.0 },
      }),
    ],
    summary: { vbmd: 74.1, levels: ['L1', 'L2'], basis: 'lumbar', category: 'osteoporosis' },
    calibration: { method: 'asynchronous', slope: 1.08, intercept: -3.2, references: { scanner: 'DEMO CT 64', kvp: 120 } },
    qc: { warnings: [] },
    model: { name: 'vbmd-resunet3d', version: '0.3.0', sha256: 'a'.repeat(64) },
    software: { name: 'vbmd', version: '0.1.0' },
    timingsMs: { total: 4200 },
  });
}

/** Contrast chest CT: only T11-T12 measurable, T10 excluded (lesion), phantomless calibration, no model. */
export function thoracicContrastReport(): VbmdReport {
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: {
      kind: 'dicom',
      studyInstanceUid: '1.2.826.0.1.3680043.8.498.2002',
      seriesInstanceUid: '1.2.826.0.1.3680043.8.498.2002.3',
      acquisitionDateTime: '20230611143005',
      dims: [512, 512, 220],
      spacingMm: [0.8, 0.8, 2],
      contrast: true,
    },
    levels: [
      level('T10', 210.5, { included: false, exclusionReason: 'lesion', exclusionDetail: 'density 2.1x its neighbours, heterogeneous (blastic?)' }),
      level('T11', 104.4, { labelConfidence: 0.7 }),
      level('T12', 99.8),
    ],
    summary: { vbmd: 102.1, levels: ['T11', 'T12'], basis: 'thoracic-extrapolated', category: 'osteopenia' },
    calibration: {
      method: 'phantomless-internal',
      slope: 1.02,
      intercept: 1.5,
      references: { airHu: -998.1, fatHu: -101.2, muscleHu: 52.3, bloodHu: 160.4 },
    },
    qc: { warnings: ['Contrast-enhanced series (portal venous phase suspected).'] },
    model: null,
    software: { name: 'vbmd', version: '0.1.0' },
    timingsMs: { total: 2100 },
  });
}

/** Nothing measurable: indeterminate, nominal calibration. */
export function indeterminateReport(): VbmdReport {
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: {
      kind: 'dicom',
      studyInstanceUid: '1.2.826.0.1.3680043.8.498.3003',
      seriesInstanceUid: '1.2.826.0.1.3680043.8.498.3003.1',
      acquisitionDateTime: '2022-01-20',
      dims: [512, 512, 80],
      spacingMm: [0.9, 0.9, 5],
      contrast: false,
    },
    levels: [level('L1', null, { included: false, exclusionReason: 'partial-coverage', roiVoxels: 0, roiHuMedian: null, roiHuMean: null })],
    summary: { vbmd: null, levels: [], basis: 'none', category: 'indeterminate' },
    calibration: { method: 'nominal', slope: 1, intercept: 0, uncalibrated: true, references: { kvp: 120 } },
    qc: { warnings: ['Slices 5 mm thick: trabecular ROI unreliable.'] },
    software: { name: 'vbmd', version: '0.1.0' },
    timingsMs: {},
  });
}

/** The same analysis as `lumbarOsteoporosisReport` made by a newer model version. */
export function lumbarReportNewModel(): VbmdReport {
  const r = lumbarOsteoporosisReport();
  return { ...r, model: { name: 'vbmd-resunet3d', version: '0.4.0', sha256: 'b'.repeat(64) }, summary: { ...r.summary, vbmd: 75.0 } };
}

/** The same report for another study (tests write the same fixture for several patients). */
export function forStudy(report: VbmdReport, suffix: string): VbmdReport {
  const uid = `${report.input.studyInstanceUid ?? '1.2.826.0.1.3680043.8.498.9'}.${suffix}`;
  return { ...report, input: { ...report.input, studyInstanceUid: uid, seriesInstanceUid: `${uid}.1` } };
}

/** The same analysis with a corrected calibration (same engine and model). */
export function withCalibration(report: VbmdReport, slope: number, intercept: number): VbmdReport {
  return { ...report, calibration: { ...report.calibration, slope, intercept } };
}

/** `levels` marked fractured with the given anterior height reduction (posterior 26 mm). */
export function withFractures(report: VbmdReport, levels: Partial<Record<LevelResult['level'], number>>): VbmdReport {
  const names = Object.keys(levels) as LevelResult['level'][];
  const existing = new Set(report.levels.map((l) => l.level));
  const extra = names.filter((n) => !existing.has(n)).map((n) => level(n, 90));
  return {
    ...report,
    levels: [...report.levels, ...extra].map((l) => {
      const loss = levels[l.level];
      if (loss === undefined) return l;
      return { ...l, included: false, exclusionReason: 'fracture', exclusionDetail: `anterior height loss ${Math.round(loss * 100)}%`, heightsMm: { anterior: 26 * (1 - loss), middle: 25, posterior: 26 } };
    }),
  };
}

/** L3 of `lumbarOsteoporosisReport` re-measured without the deformity (heights within 10%). */
export function withoutFractures(report: VbmdReport): VbmdReport {
  return {
    ...report,
    levels: report.levels.map((l) =>
      l.exclusionReason === 'fracture' ? { ...l, included: false, exclusionReason: 'lesion', exclusionDetail: 'density far off its neighbours', heightsMm: { anterior: 24, middle: 25, posterior: 26 } } : l,
    ),
  };
}
