import type { BmdCategory, CalibrationMethod, ReportSummary, VertebraLevel } from '../bmd/report.js';
import { VERTEBRA_SNOMED } from '../fhir/codes.js';

/**
 * Coded concepts written into the SR, SEG, key image and rejection notes (PS3.16 code meanings as the
 * standard spells them). A code is [value, scheme designator, meaning]; naturalized by `codeItem`.
 *
 * No standard code exists for volumetric trabecular BMD by QCT (../shared/STANDARDS.md section 3), nor for the
 * ACR QCT category or the calibration method, so those come from the project's private coding scheme
 * "99VBMD" (PS3.16 8.2: private schemes start with "99"), declared in every object's Coding Scheme
 * Identification Sequence. Code values fit SH (16 characters) and meanings LO (64), PS3.5 6.2.
 */
export type Code = readonly [value: string, scheme: string, meaning: string];

export interface CodeItem {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

export function codeItem(c: Code): CodeItem {
  return { CodeValue: c[0], CodingSchemeDesignator: c[1], CodeMeaning: c[2] };
}

export const PRIVATE_SCHEME = '99VBMD';
export const PRIVATE_SCHEME_IDENTIFICATION = {
  CodingSchemeDesignator: PRIVATE_SCHEME,
  CodingSchemeName: 'vbmd project codes',
  CodingSchemeResponsibleOrganization: 'vbmd project',
  // Same concepts as the FHIR CodeSystem https://vbmd.org/fhir/CodeSystem/vbmd.
  CodingSchemeUID: '2.25.318537684604906013394250780562607192606',
};

export const DCM = {
  imagingMeasurementReport: ['126000', 'DCM', 'Imaging Measurement Report'],
  imageLibrary: ['111028', 'DCM', 'Image Library'],
  imageLibraryGroup: ['126200', 'DCM', 'Image Library Group'],
  imagingMeasurements: ['126010', 'DCM', 'Imaging Measurements'],
  measurementGroup: ['125007', 'DCM', 'Measurement Group'],
  language: ['121049', 'DCM', 'Language of Content Item and Descendants'],
  observerType: ['121005', 'DCM', 'Observer Type'],
  device: ['121007', 'DCM', 'Device'],
  deviceObserverUid: ['121012', 'DCM', 'Device Observer UID'],
  deviceObserverName: ['121013', 'DCM', 'Device Observer Name'],
  deviceObserverManufacturer: ['121014', 'DCM', 'Device Observer Manufacturer'],
  deviceObserverModelName: ['121015', 'DCM', 'Device Observer Model Name'],
  procedureReported: ['121058', 'DCM', 'Procedure reported'],
  trackingIdentifier: ['112039', 'DCM', 'Tracking Identifier'],
  trackingUid: ['112040', 'DCM', 'Tracking Unique Identifier'],
  referencedSegment: ['121191', 'DCM', 'Referenced Segment'],
  sourceSeriesForSegmentation: ['121232', 'DCM', 'Source series for segmentation'],
  derivation: ['121401', 'DCM', 'Derivation'],
  attenuationCoefficient: ['112031', 'DCM', 'Attenuation Coefficient'],
  algorithmName: ['111001', 'DCM', 'Algorithm Name'],
  algorithmVersion: ['111003', 'DCM', 'Algorithm Version'],
  algorithmParameters: ['111002', 'DCM', 'Algorithm Parameters'],
  sourceImageForProcessing: ['121322', 'DCM', 'Source image for image processing operation'],
  segmentation: ['113076', 'DCM', 'Segmentation'],
  rejectedForQualityReasons: ['113001', 'DCM', 'Rejected for Quality Reasons'],
  keyObjectDescription: ['113012', 'DCM', 'Key Object Description'],
  computedTomography: ['CT', 'DCM', 'Computed Tomography'],
} as const satisfies Record<string, Code>;

export const SCT = {
  ct: ['77477000', 'SCT', 'Computerized axial tomography'],
  findingSite: ['363698007', 'SCT', 'Finding Site'],
  volume: ['118565006', 'SCT', 'Volume'],
  mean: ['373098007', 'SCT', 'Mean'],
  median: ['373099004', 'SCT', 'Median'],
  measurementMethod: ['370129005', 'SCT', 'Measurement Method'],
  anatomicalStructure: ['123037004', 'SCT', 'Anatomical Structure'],
  lumbarSpine: ['122496007', 'SCT', 'Lumbar spine'],
  thoracicSpine: ['122495006', 'SCT', 'Thoracic spine'],
  yes: ['373066001', 'SCT', 'Yes'],
  no: ['373067005', 'SCT', 'No'],
} as const satisfies Record<string, Code>;

export const UCUM = {
  mgPerCm3: ['mg/cm3', 'UCUM', 'milligram per cubic centimeter'],
  hounsfield: ["[hnsf'U]", 'UCUM', 'Hounsfield unit'],
  mm3: ['mm3', 'UCUM', 'cubic millimeter'],
  hounsfieldPerMgCm3: ["[hnsf'U].cm3/mg", 'UCUM', 'Hounsfield unit cubic centimeter per milligram'],
} as const satisfies Record<string, Code>;

export const LANGUAGE_EN_US: Code = ['en-US', 'RFC5646', 'English (United States)'];

const P = PRIVATE_SCHEME;
export const VBMD = {
  vbmd: ['VBMD-QCT', P, 'Trabecular volumetric BMD (QCT, opportunistic CT)'],
  vbmdSummary: ['VBMD-SUMMARY', P, 'vBMD summary of the study'],
  levelIncluded: ['LEVEL-INCLUDED', P, 'Level included (measurable, not excluded)'],
  exclusionReason: ['EXCL-REASON', P, 'Level exclusion reason'],
  levelsUsed: ['LEVELS-USED', P, 'Levels used'],
  summaryBasis: ['BASIS', P, 'Summary basis'],
  acrCategory: ['ACR-CATEGORY', P, 'ACR QCT vBMD category'],
  calibrationMethod: ['CAL-METHOD', P, 'Calibration method'],
  calibrationSlope: ['CAL-SLOPE', P, 'Calibration slope (HU per mg/cm3)'],
  calibrationIntercept: ['CAL-INTERCEPT', P, 'Calibration intercept (HU)'],
  qcRemark: ['QC-REMARK', P, 'Quality control remark'],
  roiKindModel: ['ROI-MODEL', P, 'Trabecular ROI predicted by the vBMD network'],
  roiKindGeometric: ['ROI-GEOMETRIC', P, 'Geometric trabecular ROI (elliptic cylinder, mid-body)'],
} as const satisfies Record<string, Code>;

/** Same meanings as src/fhir/codes.ts VBMD_BASIS_CODES. */
export const BASIS_CODES: Record<ReportSummary['basis'], Code> = {
  lumbar: ['BASIS-LUMBAR', P, 'Mean of two lumbar vertebrae (ACR)'],
  'thoracic-extrapolated': ['BASIS-THORACIC', P, 'Lowest measurable levels of a chest CT (thoracic extrapolation)'],
  'single-level': ['BASIS-SINGLE', P, 'Only one measurable level'],
  none: ['BASIS-NONE', P, 'No measurable level'],
};

/** ACR-SPR-SSR QCT practice parameter bands (> 120 normal, 80-120 low BMD, < 80 osteoporosis, mg/cm3). */
export const CATEGORY_CODES: Record<BmdCategory, Code> = {
  normal: ['ACR-NORMAL', P, 'Normal (vBMD > 120 mg/cm3)'],
  osteopenia: ['ACR-LOW-BMD', P, 'Low bone mineral density (vBMD 80-120 mg/cm3)'],
  osteoporosis: ['ACR-OSTEOPOROSIS', P, 'Osteoporosis range (vBMD < 80 mg/cm3)'],
  indeterminate: ['ACR-INDETERMINAT', P, 'Indeterminate'],
};

export const CALIBRATION_CODES: Record<CalibrationMethod, Code> = {
  phantom: ['CAL-PHANTOM', P, 'In-scan phantom calibration'],
  asynchronous: ['CAL-ASYNC', P, 'Asynchronous phantom calibration'],
  'phantomless-internal': ['CAL-INTERNAL', P, 'Phantomless internal calibration (own tissues)'],
  nominal: ['CAL-NOMINAL', P, 'Nominal default (uncalibrated)'],
};

/** DICOM CID 7603 "Vertebra" (SNOMED CT, as src/fhir/codes.ts); undefined for a level it does not list. */
export function vertebraCode(level: VertebraLevel): Code | undefined {
  const v = VERTEBRA_SNOMED[level];
  return v ? [v, 'SCT', `${level} vertebra`] : undefined;
}

export const SOP_CLASS = {
  ct: '1.2.840.10008.5.1.4.1.1.2',
  enhancedCt: '1.2.840.10008.5.1.4.1.1.2.1',
  comprehensiveSr: '1.2.840.10008.5.1.4.1.1.88.33',
  segmentation: '1.2.840.10008.5.1.4.1.1.66.4',
  secondaryCapture: '1.2.840.10008.5.1.4.1.1.7',
  keyObjectSelection: '1.2.840.10008.5.1.4.1.1.88.59',
} as const;
