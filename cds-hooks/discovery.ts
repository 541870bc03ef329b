import { VBMD_SUMMARY_CODE_TOKEN } from '../src/fhir/codes.js';

/**
 * The three services (ids fixed by issue 8) and their prefetch templates. Templates use only first-level
 * context tokens and the recommended query subset (token equality, _sort, _count) so any CDS client can
 * satisfy them (STANDARDS.md section 1, "Prefetch tokens").
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
      'Alerts when the latest CT-derived vertebral bone density is in the osteoporosis range (warning), the osteopenia range (info) or falling fast (warning); silent otherwise.',
    prefetch: { vbmdObservations: OBSERVATIONS_PREFETCH, riskAssessments: RISK_PREFETCH },
  },
];

export function discoveryDocument(): { services: CdsServiceDefinition[] } {
  return { services: CDS_SERVICES.map((s) => ({ ...s, prefetch: { ...s.prefetch } })) };
}
