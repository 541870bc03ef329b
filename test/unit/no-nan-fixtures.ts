import type { LevelResult, VbmdReport } from '../../src/bmd/report.js';
import { vbmdReport } from '../../src/bmd/report.js';
import type { SourceSeries } from '../../src/dicom-output/source-series.js';
import type { Vec3, Volume } from '../../src/imaging/volume.js';

/**
 * vbmd.report/1 documents with the gaps real scans leave (a level the model found no ROI in, names at the
 * 0.2 placeholder confidence, no levels at all, an indeterminate summary, the nominal calibration, contrast,
 * no model, no acquisition time, a calibration whose tissue readings went non-finite), each checked against
 * the schema. All share one small CT grid so the DICOM results can be made from them too.
 */
export const DIMS: Vec3 = [48, 48, 40];
const SPACING: Vec3 = [1, 1, 1];
const ORIGIN: Vec3 = [-23.5, -23.5, -39];

/** A level on the grid with its geometric ROI; `extra` blanks what the case leaves out. */
function level(name: LevelResult['level'], zMm: number, extra: Partial<LevelResult>): LevelResult {
  return {
    level: name,
    labelConfidence: 0.9,
    centerMm: [0, 0, zMm],
    roiHuMedian: 140,
    roiHuMean: 142,
    roiHuSd: 25,
    roiVoxels: 700,
    vbmd: 120,
    included: true,
    exclusionReason: null,
    roiSource: 'geometric',
    geometricRoi: { centerMm: [0, 0, zMm], semiLrMm: 6, semiApMm: 5, halfSlabMm: 3 },
    ...extra,
  };
}

/** Every number the engine could not compute, as the report records it. */
const NOTHING_MEASURED: Partial<LevelResult> = {
  roiHuMedian: null,
  roiHuMean: null,
  roiHuSd: null,
  roiVoxels: 0,
  vbmd: null,
  modelVbmd: null,
  geometricVbmd: null,
  modelRegressionVbmd: null,
  modelClassProbabilities: null,
  heightsMm: null,
  included: false,
};

function input(suffix: string, extra: Partial<VbmdReport['input']> = {}): VbmdReport['input'] {
  return {
    kind: 'dicom',
    studyInstanceUid: `1.2.826.0.1.3680043.8.498.77${suffix}`,
    seriesInstanceUid: `1.2.826.0.1.3680043.8.498.77${suffix}.1`,
    acquisitionDateTime: '2024-05-06T07:08:09Z',
    dims: DIMS,
    spacingMm: SPACING,
    contrast: false,
    ...extra,
  };
}

const NOMINAL: VbmdReport['calibration'] = { method: 'nominal', slope: 1.2, intercept: 0, uncalibrated: true, references: { kvp: null } };
const MODEL = { name: 'vbmd-resunet3d', version: '0.3.0', sha256: 'c'.repeat(64) };
const SOFTWARE = { name: 'vbmd', version: '0.1.0' };

export interface Fixture {
  name: string;
  /** FHIR patient id the case is written for. */
  patient: string;
  /** Oldest first; the last one is the case, earlier ones give the card and the app a history. */
  reports: VbmdReport[];
}

/** The chest CT of the original report: the model found no ROI, every name at 0.2, nothing summarised. */
function chestNoRoi(): VbmdReport {
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: input('1', { manufacturer: 'Philips', kvp: 120 }),
    levels: [
      level('T6', -30, { ...NOTHING_MEASURED, labelConfidence: 0.2, exclusionReason: 'label-uncertain', roiSource: 'model', modelRoiVoxels: 0 }),
      // The model found no ROI: the geometric value stands, the model's is missing.
      level('T7', -20, { labelConfidence: 0.2, exclusionReason: 'label-uncertain', included: false, modelVbmd: null, geometricVbmd: 130.2, vbmd: 130.2, heightsMm: null }),
      // Excluded with no reason recorded (the schema allows it).
      level('T8', -10, { labelConfidence: 0.2, included: false, exclusionReason: null, exclusionDetail: null, vbmd: null, roiHuMedian: null, roiHuMean: null }),
    ],
    summary: { vbmd: null, levels: [], basis: 'none', category: 'indeterminate' },
    calibration: NOMINAL,
    qc: { warnings: ['No level is measurable: the result is indeterminate.'] },
    model: MODEL,
    software: SOFTWARE,
    timingsMs: { total: 900 },
  });
}

/** No vertebra found at all on a contrast scan, nominal calibration, no model. */
function nothingFound(): VbmdReport {
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: input('2', { contrast: true }),
    levels: [],
    summary: { vbmd: null, levels: [], basis: 'none', category: 'indeterminate' },
    calibration: NOMINAL,
    qc: { warnings: [] },
    model: null,
    timingsMs: {},
  });
}

/** One level measured (osteoporosis range), the model gave no value or probabilities, contrast, uncalibrated,
 * fractures below. */
function singleLevel(): VbmdReport {
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: input('3', { contrast: true }),
    levels: [
      level('L1', -30, { vbmd: 72.4, modelVbmd: null, geometricVbmd: 72.4, modelClassProbabilities: null, heightsMm: null, roiHuSd: null }),
      level('L2', -20, { ...NOTHING_MEASURED, exclusionReason: 'roi-too-small', exclusionDetail: null }),
      level('L3', -10, { ...NOTHING_MEASURED, exclusionReason: null, geometricRoi: undefined }),
      // A graded fracture, and one whose posterior height came out 0 (no ratio can be taken of it).
      level('L4', -2, { included: false, exclusionReason: 'fracture', vbmd: 65, heightsMm: { anterior: 15, middle: 21, posterior: 25 }, geometricRoi: undefined }),
      level('L5', 6, { ...NOTHING_MEASURED, exclusionReason: 'fracture', heightsMm: { anterior: 0, middle: 0, posterior: 0 }, geometricRoi: undefined }),
    ],
    summary: { vbmd: 72.4, levels: ['L1'], basis: 'single-level', category: 'osteoporosis' },
    calibration: NOMINAL,
    qc: { warnings: ['Only L1 is measurable: the summary rests on a single level.'] },
    model: MODEL,
    software: SOFTWARE,
    timingsMs: { total: 1200 },
  });
}

/** Thoracic extrapolation; the phantomless fit's tissue readings went non-finite where a careless
 * computation would leave them (references is free-form, so the schema lets them through). */
function thoracic(suffix: string, date: string, vbmd: number, category: VbmdReport['summary']['category']): VbmdReport {
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: input(suffix, { acquisitionDateTime: date, contrast: true }),
    levels: [
      level('T11', -30, { vbmd: vbmd + 1, labelConfidence: 0.6 }),
      level('T12', -20, { vbmd: vbmd - 1, heightsMm: null }),
    ],
    summary: { vbmd, levels: ['T11', 'T12'], basis: 'thoracic-extrapolated', category },
    calibration: {
      method: 'phantomless-internal',
      slope: 1.05,
      intercept: 2.5,
      references: { tissues: { fat: { measuredHu: Number.NaN }, muscle: { measuredHu: Number.POSITIVE_INFINITY } }, r2: Number.NaN, kvp: 120 },
    },
    qc: { warnings: [] },
    model: null,
    software: SOFTWARE,
    timingsMs: { total: 800 },
  });
}

/** Lumbar, measured, but the images carried no acquisition time. */
function noAcquisitionTime(): VbmdReport {
  const r = singleLevel();
  return vbmdReport.parse({
    ...r,
    input: input('6', { acquisitionDateTime: undefined }),
    levels: [level('L1', -30, { vbmd: 101 }), level('L2', -20, { vbmd: 99 })],
    summary: { vbmd: 100, levels: ['L1', 'L2'], basis: 'lumbar', category: 'osteopenia' },
    qc: { warnings: [] },
  });
}

export function fixtures(): Fixture[] {
  return [
    { name: 'chest CT, model found no ROI, names at 0.2, indeterminate', patient: 'no-roi', reports: [chestNoRoi()] },
    { name: 'no vertebra found, contrast, uncalibrated, no model', patient: 'empty', reports: [nothingFound()] },
    { name: 'single level, model without value or probabilities, contrast, uncalibrated', patient: 'single', reports: [singleLevel()] },
    {
      name: 'thoracic extrapolation after a 0.0 mg/cm3 scan, non-finite calibration readings',
      patient: 'thoracic',
      reports: [thoracic('4', '2022-01-10T10:00:00Z', 0, 'osteoporosis'), thoracic('5', '2024-05-06T07:08:09Z', 95.3, 'osteopenia')],
    },
    { name: 'measured, no acquisition time', patient: 'no-time', reports: [noAcquisitionTime()] },
  ];
}

/** A valid report with a non-finite number at `path` (a careless computation), bypassing the schema. */
export function withValueAt(path: readonly (string | number)[], value: number): VbmdReport {
  const r = structuredClone(singleLevel()) as unknown as Record<string | number, unknown>;
  let o = r;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[path[path.length - 1]!] = value;
  return r as unknown as VbmdReport;
}

/** The CT the fixtures were measured on: water-like soft tissue with a brighter block where the spine is. */
export function fixtureVolume(): Volume {
  const [nx, ny, nz] = DIMS;
  const hu = new Int16Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) hu[i + nx * (j + ny * k)] = Math.abs(i - 24) < 9 && Math.abs(j - 24) < 8 ? 160 : 30;
  return { hu, dims: DIMS, spacingMm: SPACING, originMm: ORIGIN, direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] };
}

/** The source series of a fixture: one instance per slice of the grid. */
export function fixtureSource(report: VbmdReport): SourceSeries {
  const study = report.input.studyInstanceUid!;
  const series = report.input.seriesInstanceUid!;
  return {
    seriesInstanceUid: series,
    frameOfReferenceUid: `${study}.9`,
    patientStudy: {
      PatientName: 'Test^Edgecase',
      PatientID: 'EDGE-1',
      PatientBirthDate: '',
      PatientSex: '',
      StudyInstanceUID: study,
      StudyDate: '20240506',
      StudyTime: '070809',
      ReferringPhysicianName: '',
      StudyID: '1',
      AccessionNumber: '',
    },
    instances: Array.from({ length: DIMS[2] }, (_, k) => ({
      sopInstanceUid: `${series}.${k + 1}`,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      positionMm: [ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SPACING[2]] as Vec3,
    })),
  };
}
