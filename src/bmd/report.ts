import { z } from 'zod';

/**
 * `vbmd.report/1`: the stable contract between the measurement engine and everything downstream (FHIR
 * mapping, CDS cards, the SMART app, population queries, other tools). Add optional fields only; anything
 * else is a new schema version.
 */
export const REPORT_SCHEMA = 'vbmd.report/1';

export const VERTEBRA_LEVELS = [
  'C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7',
  'T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7', 'T8', 'T9', 'T10', 'T11', 'T12',
  'L1', 'L2', 'L3', 'L4', 'L5', 'S1',
] as const;
export const vertebraLevel = z.enum(VERTEBRA_LEVELS);
export type VertebraLevel = z.infer<typeof vertebraLevel>;

/** ACR-SPR-SSR QCT practice parameter (2018), trabecular vBMD of two lumbar vertebrae, mg/cm3. */
export const bmdCategory = z.enum(['normal', 'osteopenia', 'osteoporosis', 'indeterminate']);
export type BmdCategory = z.infer<typeof bmdCategory>;

export const exclusionReason = z.enum([
  'fracture',
  'lesion',
  'partial-coverage',
  'roi-too-small',
  'label-uncertain',
  'implant-or-artifact',
]);
export type ExclusionReason = z.infer<typeof exclusionReason>;

const vec3 = z.tuple([z.number(), z.number(), z.number()]);

export const levelResult = z.object({
  level: vertebraLevel,
  /** 0..1: how sure the label is (rib/sacrum anchors, count consistency). */
  labelConfidence: z.number().min(0).max(1),
  /** Centre of the vertebral body, DICOM patient coordinates (LPS, mm). */
  centerMm: vec3,
  roiHuMedian: z.number().nullable(),
  roiHuMean: z.number().nullable(),
  roiHuSd: z.number().nullable().optional(),
  roiVoxels: z.number().int().nonnegative(),
  /** Calibrated trabecular vBMD, mg/cm3 (K2HPO4-equivalent), from the ROI median. */
  vbmd: z.number().nullable(),
  included: z.boolean(),
  exclusionReason: exclusionReason.nullable(),
  /** Plain-language detail of the exclusion or of QC remarks for this level. */
  exclusionDetail: z.string().nullable().optional(),
  heightsMm: z
    .object({ anterior: z.number(), middle: z.number(), posterior: z.number() })
    .nullable()
    .optional(),
  // Filled by the model (src/model/enrich-report.ts) when a model is configured.
  modelVbmd: z.number().nullable().optional(),
  modelClassProbabilities: z
    .object({ normal: z.number(), osteopenia: z.number(), osteoporosis: z.number() })
    .nullable()
    .optional(),
  roiSource: z.enum(['model', 'geometric']).optional(),
  /** The model's regression head, mg/cm3 (cross-check of modelVbmd, the mean over its predicted ROI). */
  modelRegressionVbmd: z.number().nullable().optional(),
  /** Voxels (1.5 mm cubes, src/model/contract.ts) of the model's predicted trabecular ROI. */
  modelRoiVoxels: z.number().int().nonnegative().optional(),
  /** The geometric ROI's vBMD, kept when a model ran (vbmd holds the value of roiSource). */
  geometricVbmd: z.number().nullable().optional(),
  /**
   * The geometric ROI itself (src/bmd/roi/trabecular-roi.ts RoiGeometry, unrounded so its voxels can be found
   * again exactly): an elliptic cylinder around centerMm (LPS) with its axis along patient z. For the DICOM SEG.
   */
  geometricRoi: z.object({ centerMm: vec3, semiLrMm: z.number(), semiApMm: z.number(), halfSlabMm: z.number() }).optional(),
  /**
   * The model's predicted trabecular ROI (roi_logits >= 0) on its patch grid: voxels^3 cubes of spacingMm,
   * centred on centerMm, layout of src/model/contract.ts (index d*V*V + h*V + w; d +S, h +P, w +L), bits packed
   * LSB first, raw-deflated, base64. For the DICOM SEG and key image.
   */
  modelRoiMask: z
    .object({ voxels: z.number().int().positive(), spacingMm: z.number().positive(), encoding: z.literal('bits-lsb-deflate-base64'), data: z.string() })
    .optional(),
});
export type LevelResult = z.infer<typeof levelResult>;

export const calibrationMethod = z.enum(['phantom', 'asynchronous', 'phantomless-internal', 'nominal']);
export type CalibrationMethod = z.infer<typeof calibrationMethod>;

export const calibrationResult = z.object({
  method: calibrationMethod,
  /** trabecular HU = intercept + slope * vBMD(mg/cm3) */
  slope: z.number(),
  intercept: z.number(),
  /** true only for the nominal default: the number is not traceable to any calibration. */
  uncalibrated: z.boolean().optional(),
  /** Measured reference HUs and their assumed densities (phantomless), or the matched site entry. */
  references: z.record(z.string(), z.unknown()),
});
export type CalibrationResult = z.infer<typeof calibrationResult>;

export const reportSummary = z.object({
  vbmd: z.number().nullable(),
  levels: z.array(vertebraLevel),
  /** lumbar: L1-L2 (or other lumbar pair); thoracic-extrapolated: lowest two measurable levels from chest CT. */
  basis: z.enum(['lumbar', 'thoracic-extrapolated', 'single-level', 'none']),
  category: bmdCategory,
});
export type ReportSummary = z.infer<typeof reportSummary>;

export const reportInput = z.object({
  kind: z.enum(['dicom', 'nifti', 'dicomweb', 'phantom']),
  studyInstanceUid: z.string().optional(),
  seriesInstanceUid: z.string().optional(),
  patientId: z.string().optional(),
  accessionNumber: z.string().optional(),
  acquisitionDateTime: z.string().optional(),
  dims: vec3,
  spacingMm: vec3,
  kvp: z.number().optional(),
  manufacturer: z.string().optional(),
  manufacturerModelName: z.string().optional(),
  contrast: z.boolean(),
});

export const vbmdReport = z.object({
  schema: z.literal(REPORT_SCHEMA),
  input: reportInput,
  levels: z.array(levelResult),
  summary: reportSummary,
  calibration: calibrationResult,
  qc: z.object({ warnings: z.array(z.string()) }),
  model: z.object({ name: z.string(), version: z.string(), sha256: z.string() }).nullable().optional(),
  /** Software that made the report. */
  software: z.object({ name: z.string(), version: z.string() }).optional(),
  timingsMs: z.record(z.string(), z.number()),
});
export type VbmdReport = z.infer<typeof vbmdReport>;

/** ACR thresholds: > 120 normal, 80-120 osteopenia (low BMD), < 80 osteoporosis (mg/cm3). */
export function categoryForVbmd(vbmdMgCm3: number | null): BmdCategory {
  if (vbmdMgCm3 === null || !Number.isFinite(vbmdMgCm3)) return 'indeterminate';
  if (vbmdMgCm3 > 120) return 'normal';
  if (vbmdMgCm3 >= 80) return 'osteopenia';
  return 'osteoporosis';
}
