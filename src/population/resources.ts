import { z } from 'zod';
import type { BmdCategory } from '../bmd/report.js';
import { VBMD_BASIS_CODES } from '../fhir/codes.js';
import { fhirDateTimeToMs, patientKey, readVbmdResult } from '../fhir/result-reader.js';
import type { TherapyMatch, TherapyMatcher } from './therapy-value-set.js';

export { fhirDateTimeToMs, patientKey };

/**
 * The edge where resources from any source (FHIR search, Bulk Data, NDJSON files) are validated. vBMD
 * Observations are read by src/fhir/result-reader.ts, the one reader the CDS card and the SMART app use too
 * (same status, unit and time rules); medication records by zod schemas of only the fields read here.
 * Anything that is not a vbmd summary Observation or a bone-therapy medication record becomes a counted skip
 * reason, never an exception: one odd resource must not end a million-row run.
 */

export const COHORT_RESOURCE_TYPES = ['Observation', 'MedicationRequest', 'MedicationStatement'] as const;
export type CohortResourceType = (typeof COHORT_RESOURCE_TYPES)[number];

const coding = z.object({ system: z.string().optional(), code: z.string().optional(), display: z.string().optional() });
const codeableConcept = z.object({ coding: z.array(coding).optional(), text: z.string().optional() });
const identifier = z.object({ system: z.string().optional(), value: z.string().optional() });
const reference = z.object({ reference: z.string().optional(), type: z.string().optional(), identifier: identifier.optional() });
const period = z.object({ start: z.string().optional(), end: z.string().optional() });

const containedMedication = z.object({ resourceType: z.string(), id: z.string().optional(), code: codeableConcept.optional() });
const medicationCommon = {
  id: z.string().optional(),
  status: z.string(),
  subject: reference.optional(),
  medicationCodeableConcept: codeableConcept.optional(),
  medicationReference: reference.optional(),
  contained: z.array(containedMedication).optional(),
};
const medicationRequestSchema = z.object({
  resourceType: z.literal('MedicationRequest'),
  ...medicationCommon,
  dispenseRequest: z.object({ validityPeriod: period.optional() }).optional(),
});
const medicationStatementSchema = z.object({
  resourceType: z.literal('MedicationStatement'),
  ...medicationCommon,
  effectivePeriod: period.optional(),
});

export type Basis = keyof typeof VBMD_BASIS_CODES;

/** One summary vBMD Observation, as the cohort needs it. */
export interface VbmdScan {
  patient: string;
  observationId: string | null;
  /** The effective time as written (for display and month keys). */
  effective: string;
  effectiveMs: number;
  /** When the result was released; decides which of two results of one study is current. */
  issuedMs: number | null;
  /** null when the Observation says dataAbsentReason (indeterminate). */
  vbmdMgCm3: number | null;
  category: BmdCategory;
  basis: Basis | null;
  /** final, amended, corrected or preliminary (src/fhir/lifecycle.ts). */
  status: string;
  /** Not traceable to any calibration (nominal default): result-reader.ts's one rule. */
  uncalibrated: boolean;
  studyUid: string | null;
}

export interface TherapyRecord {
  patient: string;
  resourceType: 'MedicationRequest' | 'MedicationStatement';
  therapy: TherapyMatch;
  /** In force at the reference time (see isActive rules in README "Treatment"). */
  active: boolean;
}

export type SkipReason =
  | 'invalid'
  | 'not-vbmd'
  | 'entered-in-error'
  | 'not-a-result'
  | 'no-subject'
  | 'no-effective-time'
  | 'unit'
  | 'superseded'
  | 'not-bone-therapy'
  | 'unresolved-medication-reference'
  | 'other-resource-type';

export type Extracted =
  | { kind: 'scan'; scan: VbmdScan }
  | { kind: 'therapy'; therapy: TherapyRecord }
  | { kind: 'skip'; reason: SkipReason };

export function extractObservation(raw: unknown): Extracted {
  const r = readVbmdResult(raw, { detail: false });
  if (!r.ok) return { kind: 'skip', reason: r.reason };
  const x = r.result;
  return {
    kind: 'scan',
    scan: {
      patient: x.patient!,
      observationId: x.observationId,
      effective: x.effective,
      effectiveMs: x.effectiveMs,
      issuedMs: x.issuedMs,
      vbmdMgCm3: x.vbmdMgCm3,
      category: x.category,
      basis: x.basis === 'unknown' ? null : x.basis,
      status: x.status,
      uncalibrated: x.uncalibrated,
      studyUid: x.studyUid,
    },
  };
}

type MedicationLike = z.infer<typeof medicationRequestSchema> | z.infer<typeof medicationStatementSchema>;

function medicationConcept(m: MedicationLike): z.infer<typeof codeableConcept> | null | 'unresolved' {
  if (m.medicationCodeableConcept) return m.medicationCodeableConcept;
  const ref = m.medicationReference?.reference;
  if (ref?.startsWith('#')) {
    const c = m.contained?.find((r) => r.resourceType === 'Medication' && r.id === ref.slice(1));
    return c?.code ?? 'unresolved';
  }
  // A reference to a separate Medication resource would need a join across the stream; counted, not guessed.
  if (m.medicationReference) return 'unresolved';
  return null;
}

/** Ended strictly before the reference time. Date-only ends cover their whole day. */
function endedBefore(end: string | undefined, asOfMs: number): boolean {
  if (!end) return false;
  const ms = fhirDateTimeToMs(end);
  if (ms === null) return false;
  const inclusiveEnd = /T/.test(end) ? ms : ms + 86_400_000 - 1;
  return inclusiveEnd < asOfMs;
}

export function extractMedication(raw: unknown, matcher: TherapyMatcher, asOfMs: number): Extracted {
  const rt = (raw as { resourceType?: unknown } | null)?.resourceType;
  const parsed = rt === 'MedicationRequest' ? medicationRequestSchema.safeParse(raw) : medicationStatementSchema.safeParse(raw);
  if (!parsed.success) return { kind: 'skip', reason: 'invalid' };
  const m = parsed.data;
  if (m.status === 'entered-in-error') return { kind: 'skip', reason: 'entered-in-error' };
  const patient = patientKey(m.subject);
  if (!patient) return { kind: 'skip', reason: 'no-subject' };
  const concept = medicationConcept(m);
  if (concept === 'unresolved') return { kind: 'skip', reason: 'unresolved-medication-reference' };
  const therapy = concept ? matcher.match(concept) : null;
  if (!therapy) return { kind: 'skip', reason: 'not-bone-therapy' };
  // MedicationStatement 'not-taken' is a record that the drug is NOT taken: never treatment.
  if (m.status === 'not-taken') return { kind: 'skip', reason: 'not-bone-therapy' };
  let active: boolean;
  if (m.resourceType === 'MedicationRequest') {
    active = m.status === 'active' && !endedBefore(m.dispenseRequest?.validityPeriod?.end, asOfMs);
  } else {
    active = m.status === 'active' && !endedBefore(m.effectivePeriod?.end, asOfMs);
  }
  return { kind: 'therapy', therapy: { patient, resourceType: m.resourceType, therapy, active } };
}

export function extractResource(raw: unknown, matcher: TherapyMatcher, asOfMs: number): Extracted {
  const rt = (raw as { resourceType?: unknown } | null)?.resourceType;
  if (rt === 'Observation') return extractObservation(raw);
  if (rt === 'MedicationRequest' || rt === 'MedicationStatement') return extractMedication(raw, matcher, asOfMs);
  return { kind: 'skip', reason: 'other-resource-type' };
}
