import { VBMD_SUMMARY_CODE_TOKEN, VERTEBRAL_COMPRESSION_FRACTURE_SNOMED } from '../src/fhir/codes.js';
import { CPT_SYSTEM, DXA_CPT, DXA_LOINC, LOINC } from './care-context.js';

/**
 * The three services (ids fixed, as EHRs register them: cds-hooks/README.md "HTTP surface") and their prefetch
 * templates. Templates use only first-level context tokens and the recommended query subset (token equality, _sort,
 * _count) so any CDS client can satisfy them (STANDARDS.md section 1, "Prefetch tokens").
 */
export const SERVICE_IDS = {
  orderSelect: 'vbmd-order-select',
  orderSign: 'vbmd-order-sign',
  patientView: 'vbmd-patient-view',
} as const;
export type ServiceId = (typeof SERVICE_IDS)[keyof typeof SERVICE_IDS];

/** Newest results first; 20 covers several years of oncology CTs for the trend (3-year rate window).
 * `patient=Patient/{id}` rather than a bare id: both are valid FHIR reference searches, but some servers
 * (the in-process fhir-router MemoryRepository among them) match only the typed form. */
export const OBSERVATIONS_PREFETCH = `Observation?patient=Patient/{{context.patientId}}&code=${VBMD_SUMMARY_CODE_TOKEN}&_sort=-date&_count=20`;
export const RISK_PREFETCH = 'RiskAssessment?patient=Patient/{{context.patientId}}&_sort=-date&_count=5';
/** Vertebral fracture findings (src/fhir/fracture.ts), for the patient-view card. */
export const FRACTURES_PREFETCH = `Observation?patient=Patient/{{context.patientId}}&code=${VERTEBRAL_COMPRESSION_FRACTURE_SNOMED.system}|${VERTEBRAL_COMPRESSION_FRACTURE_SNOMED.code}&_count=50`;
/** Care already in place (care-context.ts): active bone-protective drugs, DXA results and DXA orders. */
export const MEDICATION_REQUESTS_PREFETCH = 'MedicationRequest?patient=Patient/{{context.patientId}}&status=active&_count=100';
export const MEDICATION_STATEMENTS_PREFETCH = 'MedicationStatement?patient=Patient/{{context.patientId}}&status=active&_count=100';
export const DXA_OBSERVATIONS_PREFETCH = `Observation?patient=Patient/{{context.patientId}}&code=${DXA_LOINC.map((c) => `${LOINC}|${c}`).join(',')}&_sort=-date&_count=10`;
export const DXA_PROCEDURES_PREFETCH = `Procedure?patient=Patient/{{context.patientId}}&code=${DXA_CPT.map((c) => `${CPT_SYSTEM}|${c}`).join(',')}&_count=20`;
export const DXA_ORDERS_PREFETCH = `ServiceRequest?patient=Patient/{{context.patientId}}&code=${DXA_CPT.map((c) => `${CPT_SYSTEM}|${c}`).join(',')}&_count=20`;
/** Order hooks only show the last result. */
export const LAST_OBSERVATION_PREFETCH = `Observation?patient=Patient/{{context.patientId}}&code=${VBMD_SUMMARY_CODE_TOKEN}&_sort=-date&_count=3`;

export interface CdsServiceDefinition {
  hook: 'order-select' | 'order-sign' | 'patient-view';
  id: ServiceId;
  title: string;
  description: string;
  prefetch: Record<string, string>;
}

export const CDS_SERVICES: readonly CdsServiceDefinition[] = [
  {
    hook: 'order-select',
    id: SERVICE_IDS.orderSelect,
    title: 'vbmd: bone density from this CT',
    description:
      'When a chest or abdomen CT is selected, says that vertebral bone density (vBMD) will be measured from the scan and shows the last result.',
    prefetch: { vbmdObservations: LAST_OBSERVATION_PREFETCH },
  },
  {
    hook: 'order-sign',
    id: SERVICE_IDS.orderSign,
    title: 'vbmd: bone density from this CT',
    description:
      'When a chest or abdomen CT is signed, says that vertebral bone density (vBMD) will be measured from the scan, shows the last result, and watches for the study.',
    prefetch: { vbmdObservations: LAST_OBSERVATION_PREFETCH },
  },
  {
    hook: 'patient-view',
    id: SERVICE_IDS.patientView,
    title: 'vbmd: bone density alert',
    description:
      'Alerts when the latest CT-derived vertebral bone density is in the osteoporosis range, a vertebral fracture was found, or it is falling fast beyond measurement error (warning; info when therapy, a recent DXA or a DXA order is on record), or in the low bone density (osteopenia) range (info); silent otherwise.',
    prefetch: {
      vbmdObservations: OBSERVATIONS_PREFETCH,
      riskAssessments: RISK_PREFETCH,
      vbmdFractures: FRACTURES_PREFETCH,
      medicationRequests: MEDICATION_REQUESTS_PREFETCH,
      medicationStatements: MEDICATION_STATEMENTS_PREFETCH,
      dxaObservations: DXA_OBSERVATIONS_PREFETCH,
      dxaProcedures: DXA_PROCEDURES_PREFETCH,
      dxaOrders: DXA_ORDERS_PREFETCH,
    },
  },
];

export function discoveryDocument(): { services: CdsServiceDefinition[] } {
  return { services: CDS_SERVICES.map((s) => ({ ...s, prefetch: { ...s.prefetch } })) };
}
