/**
 * Every code, system and identifier namespace vbmd writes into FHIR, in one place: the FHIR mapping, the CDS
 * service, the SMART app and the population queries all read the same constants.
 * Sources: ../shared/STANDARDS.md section 3 (SNOMED from DICOM CID 7603; risk-probability; UCUM).
 */
import type { VertebraLevel } from '../bmd/report.js';

/** Project CodeSystem. No LOINC term for QCT volumetric vertebral BMD is confirmed, and the DXA areal
 * LOINC codes (24966-4 etc.) measure a different property by a different method, so we never reuse them. */
export const VBMD_CODE_SYSTEM = 'https://vbmd.org/fhir/CodeSystem/vbmd';
export const VBMD_SUMMARY_CODE = {
  system: VBMD_CODE_SYSTEM,
  code: 'vbmd-trabecular-qct',
  display: 'Vertebral trabecular volumetric bone mineral density (QCT, opportunistic CT)',
} as const;
export const VBMD_LEVEL_CODE = {
  system: VBMD_CODE_SYSTEM,
  code: 'vbmd-trabecular-qct-level',
  display: 'Trabecular vBMD of one vertebral body (QCT, opportunistic CT)',
} as const;
/** `Observation.method` codes saying which levels the summary rests on (ACR uses two lumbar vertebrae). */
export const VBMD_BASIS_CODES = {
  lumbar: { system: VBMD_CODE_SYSTEM, code: 'basis-lumbar', display: 'Mean of two lumbar vertebrae (ACR)' },
  'thoracic-extrapolated': {
    system: VBMD_CODE_SYSTEM,
    code: 'basis-thoracic-extrapolated',
    display: 'Lowest measurable levels of a chest CT; ACR lumbar thresholds extrapolated',
  },
  'single-level': { system: VBMD_CODE_SYSTEM, code: 'basis-single-level', display: 'Only one measurable level' },
  none: { system: VBMD_CODE_SYSTEM, code: 'basis-none', display: 'No measurable level' },
} as const;

/** Query string token for the summary Observation: `code=${VBMD_SUMMARY_CODE_TOKEN}`. */
export const VBMD_SUMMARY_CODE_TOKEN = `${VBMD_CODE_SYSTEM}|${VBMD_SUMMARY_CODE.code}`;

export const UCUM_SYSTEM = 'http://unitsofmeasure.org';
/** `mg/cm3` is valid UCUM (equal to mg/mL); `mg/cm^3` is not (checked with @lhncbc/ucum-lhc). */
export const UCUM_MG_PER_CM3 = { unit: 'mg/cm3', system: UCUM_SYSTEM, code: 'mg/cm3' } as const;

export const OBSERVATION_CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const IMAGING_CATEGORY = { system: OBSERVATION_CATEGORY_SYSTEM, code: 'imaging', display: 'Imaging' } as const;

export const SNOMED = 'http://snomed.info/sct';
/** DICOM CID 7603 "Vertebra" (SNOMED CT). */
export const VERTEBRA_SNOMED: Partial<Record<VertebraLevel, string>> = {
  T1: '64864005', T2: '53733008', T3: '1626008', T4: '73071006', T5: '56401006', T6: '45296009',
  T7: '62487009', T8: '11068009', T9: '82687006', T10: '7610001', T11: '12989004', T12: '23215003',
  L1: '66794005', L2: '14293000', L3: '36470004', L4: '11994002', L5: '49668003',
};
export const OSTEOPOROSIS_SNOMED = { system: SNOMED, code: '64859006', display: 'Osteoporosis' } as const;

/**
 * v3 ObservationInterpretation: N for the normal band, L (low) for both the osteopenia and the osteoporosis
 * band. Never LL/HH ("critical"): an osteoporosis-range value on a screening CT is not a critical result and
 * must not page anyone through a critical-result workflow; which band it is, is said by `referenceRange`
 * (ACR_REFERENCE_BANDS) and the interpretation text.
 */
export const INTERPRETATION_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
export const INTERPRETATION_BY_CATEGORY = {
  normal: { system: INTERPRETATION_SYSTEM, code: 'N', display: 'Normal' },
  osteopenia: { system: INTERPRETATION_SYSTEM, code: 'L', display: 'Low' },
  osteoporosis: { system: INTERPRETATION_SYSTEM, code: 'L', display: 'Low' },
} as const;

/** `referenceRange.type` codes: HL7 referencerange-meaning `normal` for the normal band, project codes for
 * the two low bands (the HL7 value set has no concept for them; the binding is extensible). */
export const REFERENCE_RANGE_MEANING_SYSTEM = 'http://terminology.hl7.org/CodeSystem/referencerange-meaning';
export const ACR_BAND_CODES = {
  normal: { system: VBMD_CODE_SYSTEM, code: 'acr-qct-normal', display: 'Normal bone density (ACR QCT, > 120 mg/cm3)' },
  osteopenia: { system: VBMD_CODE_SYSTEM, code: 'acr-qct-low-bone-density', display: 'Low bone density (osteopenia) (ACR QCT, 80-120 mg/cm3)' },
  osteoporosis: { system: VBMD_CODE_SYSTEM, code: 'acr-qct-osteoporosis', display: 'Osteoporosis (ACR QCT, < 80 mg/cm3)' },
} as const;

export const RISK_PROBABILITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/risk-probability';

/** Identifier namespace of one analysis: value = `${studyUid}|${seriesUid}|${modelVersion}`-derived. */
export const VBMD_ANALYSIS_IDENTIFIER_SYSTEM = 'https://vbmd.org/fhir/sid/analysis';
export const DICOM_UID_SYSTEM = 'urn:dicom:uid';

// ---- Added by the FHIR mapping (README.md "What lands in the record (FHIR R4)"). ----

/** `Observation.status`/`RiskAssessment.status`: 'preliminary' when the calibration is the nominal default
 * (the number is not traceable to any calibration), 'final' otherwise. */
export const VBMD_STATUS_UNCALIBRATED = 'preliminary';

/** HL7 AI Transparency on FHIR: security label for content asserted by an AI/algorithm. */
export const AI_ASSERTED_SECURITY = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'AIAST',
  display: 'Artificial Intelligence asserted',
} as const;

/** Tag on every resource the sandbox seeds, so demo data is never mistaken for a patient's result. */
export const DEMO_DATA_TAG = { system: 'https://vbmd.org/fhir/CodeSystem/vbmd-tags', code: 'demo', display: 'Synthetic demo data' } as const;

/** DICOM (DCM) codes for algorithm identification (PS3.16 TID 4019): name and version. */
export const DCM_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';
export const ALGORITHM_VERSION_CODE = { system: DCM_SYSTEM, code: '111003', display: 'Algorithm Version' } as const;
/** Project codes for the other Device.version entries. */
export const MODEL_VERSION_CODE = { system: VBMD_CODE_SYSTEM, code: 'model-version', display: 'Model version' } as const;
export const MODEL_SHA256_CODE = { system: VBMD_CODE_SYSTEM, code: 'model-sha256', display: 'Model file SHA-256' } as const;
export const ALGORITHM_DEVICE_TYPE = {
  system: VBMD_CODE_SYSTEM,
  code: 'algorithm-vbmd-ct',
  display: 'Software algorithm measuring vertebral vBMD from CT',
} as const;

/** `RiskAssessment.method`: how the osteoporosis risk was derived. */
export const RISK_METHOD_CODES = {
  'acr-thresholds': { system: VBMD_CODE_SYSTEM, code: 'risk-acr-qct-thresholds', display: 'ACR QCT vBMD thresholds (>120 normal, 80-120 low, <80 osteoporosis)' },
  'model-probability': { system: VBMD_CODE_SYSTEM, code: 'risk-model-class-probability', display: 'Model osteoporosis-class probability with ACR QCT thresholds' },
} as const;

/** risk-probability codes by category; the mapping is the project's choice (osteoporosis range = high). */
export const QUALITATIVE_RISK_BY_CATEGORY = {
  normal: { system: RISK_PROBABILITY_SYSTEM, code: 'low', display: 'Low likelihood' },
  osteopenia: { system: RISK_PROBABILITY_SYSTEM, code: 'moderate', display: 'Moderate likelihood' },
  osteoporosis: { system: RISK_PROBABILITY_SYSTEM, code: 'high', display: 'High likelihood' },
} as const;

/** SNOMED regions for `Observation.bodySite` of the summary. */
export const LUMBAR_SPINE_SNOMED = { system: SNOMED, code: '122496007', display: 'Lumbar spine structure' } as const;
export const THORACIC_SPINE_SNOMED = { system: SNOMED, code: '122495006', display: 'Thoracic spine structure' } as const;

export const DATA_ABSENT_REASON_SYSTEM = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';
/** Accession number identifier type (ServiceRequest by accession, as the DICOM SR IG does). */
export const ACCESSION_IDENTIFIER_TYPE = {
  system: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  code: 'ACSN',
  display: 'Accession ID',
} as const;
export const PROVENANCE_AGENT_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type';

// ---- Result set, lifecycle and AI transparency. ----

/** Complex extension on the summary Observation and the DiagnosticReport carrying what readers need as data,
 * not prose: calibration, contrast, the levels the summary is the mean of, the algorithm, the analysis key. */
export const VBMD_ANALYSIS_EXTENSION = 'https://vbmd.org/fhir/StructureDefinition/vbmd-analysis';
/** Sub-extension urls of VBMD_ANALYSIS_EXTENSION. */
export const ANALYSIS_EXT = {
  analysisKey: 'analysisKey',
  calibrationMethod: 'calibrationMethod',
  calibrationSlope: 'calibrationSlopeHuPerMgCm3',
  calibrationIntercept: 'calibrationInterceptHu',
  calibrationTraceable: 'calibrationTraceable',
  contrastEnhanced: 'contrastEnhanced',
  summaryLevel: 'summaryLevel',
  engineName: 'engineName',
  engineVersion: 'engineVersion',
  modelName: 'modelName',
  modelVersion: 'modelVersion',
  modelSha256: 'modelSha256',
  supersededAnalysis: 'supersededAnalysisKey',
} as const;
/** `calibrationMethod` codes (the report's CalibrationResult.method values). */
export const CALIBRATION_METHOD_CODES = {
  phantom: { system: VBMD_CODE_SYSTEM, code: 'calibration-phantom', display: 'In-scan phantom calibration' },
  asynchronous: { system: VBMD_CODE_SYSTEM, code: 'calibration-asynchronous', display: 'Asynchronous phantom calibration (site, scanner and kVp)' },
  'phantomless-internal': { system: VBMD_CODE_SYSTEM, code: 'calibration-phantomless-internal', display: "Phantomless internal calibration from the scan's own tissues" },
  nominal: { system: VBMD_CODE_SYSTEM, code: 'calibration-nominal', display: 'Nominal kVp default (uncalibrated)' },
} as const;

/** DiagnosticReport.code: project code (no LOINC report code for opportunistic QCT vBMD is confirmed). */
export const VBMD_REPORT_CODE = {
  system: VBMD_CODE_SYSTEM,
  code: 'vbmd-ct-bone-density-report',
  display: 'Opportunistic CT bone density report (vertebral trabecular vBMD)',
} as const;
/** DiagnosticReport.category imaging (v2-0074 RAD = radiology, as the R4 imaging report examples use). */
export const RADIOLOGY_REPORT_CATEGORY = { system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD', display: 'Radiology' } as const;
/** conclusionCode. Osteopenia 312894000 (SNOMED, ../shared/STANDARDS.md section 3). No SNOMED concept for
 * "bone density normal" could be verified here, so normal uses the project code of its ACR band. */
export const OSTEOPENIA_SNOMED = { system: SNOMED, code: '312894000', display: 'Osteopenia' } as const;
export const CONCLUSION_BY_CATEGORY = {
  normal: ACR_BAND_CODES.normal,
  osteopenia: OSTEOPENIA_SNOMED,
  osteoporosis: OSTEOPOROSIS_SNOMED,
} as const;

/** SNOMED 42942008 "Compression fracture of vertebral column (disorder)": the code of the per-level fracture
 * finding (used in an HL7-community FSH value set of imaging findings and as the index code of the Open
 * Imaging Finding Model for vertebral compression fracture; not checked against a SNOMED release here). */
export const VERTEBRAL_COMPRESSION_FRACTURE_SNOMED = { system: SNOMED, code: '42942008', display: 'Compression fracture of vertebral column' } as const;
/** Genant semiquantitative grades (Genant et al., J Bone Miner Res 1993;8:1137): height reduction of the
 * vertebral body, grade 1 mild 20-25%, grade 2 moderate 25-40%, grade 3 severe > 40%; grade 0 = below 20%. */
export const GENANT_GRADE_CODES = {
  0: { system: VBMD_CODE_SYSTEM, code: 'genant-0', display: 'Genant grade 0: no fracture (height reduction < 20%)' },
  1: { system: VBMD_CODE_SYSTEM, code: 'genant-1', display: 'Genant grade 1: mild (height reduction 20-25%)' },
  2: { system: VBMD_CODE_SYSTEM, code: 'genant-2', display: 'Genant grade 2: moderate (height reduction 25-40%)' },
  3: { system: VBMD_CODE_SYSTEM, code: 'genant-3', display: 'Genant grade 3: severe (height reduction > 40%)' },
} as const;
export const HEIGHT_LOSS_CODE = { system: VBMD_CODE_SYSTEM, code: 'vertebral-height-loss', display: 'Vertebral body height reduction relative to the posterior height' } as const;
export const UCUM_PERCENT = { unit: '%', system: UCUM_SYSTEM, code: '%' } as const;

/** HL7 AI Transparency on FHIR (http://hl7.org/fhir/uv/aitransparency, input/fsh/AIDevice.fsh,
 * AIProvenance.fsh): AI-Device profile, Device.type Artificial-Intelligence, AIKind and Model-Card
 * extensions, AI-ModelCard DocumentReference codes, AI-Provenance agent role. */
export const AI_TRANSPARENCY = 'http://hl7.org/fhir/uv/aitransparency';
export const AI_DEVICE_PROFILE = `${AI_TRANSPARENCY}/StructureDefinition/AI-Device`;
export const AI_PROVENANCE_PROFILE = `${AI_TRANSPARENCY}/StructureDefinition/AI-Provenance`;
export const AI_MODEL_CARD_PROFILE = `${AI_TRANSPARENCY}/StructureDefinition/AI-ModelCard`;
export const AI_KIND_EXTENSION = `${AI_TRANSPARENCY}/StructureDefinition/aitransparency.AIKind`;
export const AI_MODEL_CARD_EXTENSION = `${AI_TRANSPARENCY}/StructureDefinition/aitransparency.modelCardDescription`;
export const AI_DEVICE_TYPE_SYSTEM = `${AI_TRANSPARENCY}/CodeSystem/AIdeviceTypeCS`;
export const AI_DEVICE_TYPE = { system: AI_DEVICE_TYPE_SYSTEM, code: 'Artificial-Intelligence', display: 'All kinds of Artificial Intelligence' } as const;
export const AI_KIND_DEEP_LEARNING = { system: AI_DEVICE_TYPE_SYSTEM, code: 'Deep-Learning-Models', display: 'Deep Learning Models' } as const;
export const AI_KIND_RULE_BASED = { system: AI_DEVICE_TYPE_SYSTEM, code: 'Rule-Based-Systems', display: 'Rule-Based Systems' } as const;
export const AI_INPUTS_SYSTEM = `${AI_TRANSPARENCY}/CodeSystem/AIinputsCS`;
export const AI_MODEL_CARD_TYPE = { system: AI_INPUTS_SYSTEM, code: 'AIModelCard', display: 'AI Model-Card' } as const;
export const AI_MODEL_CARD_MARKDOWN = { system: AI_INPUTS_SYSTEM, code: 'AIModelCardMarkdownFormat', display: 'Markdown Format' } as const;
export const PROVENANCE_ENTITY_ROLE_SYSTEM = 'http://hl7.org/fhir/provenance-entity-role';
