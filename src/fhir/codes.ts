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

/** v3 ObservationInterpretation. Mapping is the project's choice: normal N, osteopenia L, osteoporosis LL. */
export const INTERPRETATION_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
export const INTERPRETATION_BY_CATEGORY = {
  normal: { system: INTERPRETATION_SYSTEM, code: 'N', display: 'Normal' },
  osteopenia: { system: INTERPRETATION_SYSTEM, code: 'L', display: 'Low' },
  osteoporosis: { system: INTERPRETATION_SYSTEM, code: 'LL', display: 'Critical low' },
} as const;

export const RISK_PROBABILITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/risk-probability';

/** Identifier namespace of one analysis: value = `${studyUid}|${seriesUid}|${modelVersion}`-derived. */
export const VBMD_ANALYSIS_IDENTIFIER_SYSTEM = 'https://vbmd.org/fhir/sid/analysis';
export const DICOM_UID_SYSTEM = 'urn:dicom:uid';

// ---- Added by the FHIR mapping (issue 4). ----

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
