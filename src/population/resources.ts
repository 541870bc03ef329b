import { z } from 'zod';
import type { BmdCategory } from '../bmd/report.js';
import { categoryForVbmd } from '../bmd/report.js';
import { DICOM_UID_SYSTEM, VBMD_BASIS_CODES, VBMD_CODE_SYSTEM, VBMD_SUMMARY_CODE } from '../fhir/codes.js';
import type { TherapyMatch, TherapyMatcher } from './therapy-value-set.js';

/**
 * The edge where resources from any source (FHIR search, Bulk Data, NDJSON files) are validated: zod schemas
 * of only the fields the cohort reads (unknown fields are dropped, so a big resource costs little), then
 * plain typed records. Anything that is not a vbmd summary Observation or a bone-therapy medication record
 * becomes a counted skip reason, never an exception: one odd resource must not end a million-row run.
 */

export const COHORT_RESOURCE_TYPES = ['Observation', 'MedicationRequest', 'MedicationStatement'] as const;
export type CohortResourceType = (typeof COHORT_RESOURCE_TYPES)[number];

const coding = z.object({ system: z.string().optional(), code: z.string().optional(), display: z.string().optional() });
const codeableConcept = z.object({ coding: z.array(coding).optional(), text: z.string().optional() });
const identifier = z.object({ system: z.string().optional(), value: z.string().optional() });
const reference = z.object({ reference: z.string().optional(), type: z.string().optional(), identifier: identifier.optional() });
const period = z.object({ start: z.string().optional(), end: z.string().optional() });

const observationSchema = z.object({
  resourceType: z.literal('Observation'),
  id: z.string().optional(),
  status: z.string(),
  code: codeableConcept,
  subject: reference.optional(),
  effectiveDateTime: z.string().optional(),
  effectiveInstant: z.string().optional(),
  effectivePeriod: period.optional(),
  valueQuantity: z.object({ value: z.number().optional(), unit: z.string().optional(), code: z.string().optional(), system: z.string().optional() }).optional(),
  dataAbsentReason: codeableConcept.optional(),
  method: codeableConcept.optional(),
  partOf: z.array(reference).optional(),
  derivedFrom: z.array(reference).optional(),
});

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
const basisByCode = new Map<string, Basis>(
  (Object.entries(VBMD_BASIS_CODES) as Array<[Basis, { code: string }]>).map(([k, v]) => [v.code, k]),
);

/** One summary vBMD Observation, as the cohort needs it. */
export interface VbmdScan {
  patient: string;
  observationId: string | null;
  /** The effective time as written (for display and month keys). */
  effective: string;
  effectiveMs: number;
  /** null when the Observation says dataAbsentReason (indeterminate). */
  vbmdMgCm3: number | null;
  category: BmdCategory;
  basis: Basis | null;
  /** 'final', or 'preliminary' (uncalibrated nominal calibration), 'amended', 'corrected'. */
  status: string;
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
  | 'not-bone-therapy'
  | 'unresolved-medication-reference'
  | 'other-resource-type';

export type Extracted =
  | { kind: 'scan'; scan: VbmdScan }
  | { kind: 'therapy'; therapy: TherapyRecord }
  | { kind: 'skip'; reason: SkipReason };

/** `Patient/123`, `https://x/fhir/Patient/123` and `Patient/123/_history/2` all name patient `123`; other
 * references (urn:uuid, logical identifiers) are kept whole so they never merge with a different patient. */
export function patientKey(ref: z.infer<typeof reference> | undefined): string | null {
  if (!ref) return null;
  if (ref.reference) {
    const m = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref.reference);
    return m ? m[1] : ref.reference;
  }
  if (ref.identifier?.value) return `identifier:${ref.identifier.system ?? ''}|${ref.identifier.value}`;
  return null;
}

function isVbmdSummary(code: z.infer<typeof codeableConcept>): boolean {
  return code.coding?.some((c) => c.system === VBMD_CODE_SYSTEM && c.code === VBMD_SUMMARY_CODE.code) ?? false;
}

/** FHIR dateTime to epoch ms. Partial dates ('2024', '2024-05', '2024-05-06') are UTC starts, as Date.parse
 * reads them; a time without a zone is not valid FHIR and is refused rather than read in the local zone. */
export function fhirDateTimeToMs(value: string): number | null {
  if (!/^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function studyUidOf(refs: Array<z.infer<typeof reference>> | undefined): string | null {
  for (const r of refs ?? []) {
    if (r.identifier?.system === DICOM_UID_SYSTEM && r.identifier.value) return r.identifier.value.replace(/^urn:oid:/, '');
  }
  return null;
}

const MG_PER_CM3_UNITS = new Set(['mg/cm3', 'mg/mL', 'mg/ml']);

export function extractObservation(raw: unknown): Extracted {
  const parsed = observationSchema.safeParse(raw);
  if (!parsed.success) return { kind: 'skip', reason: 'invalid' };
  const o = parsed.data;
  if (!isVbmdSummary(o.code)) return { kind: 'skip', reason: 'not-vbmd' };
  if (o.status === 'entered-in-error') return { kind: 'skip', reason: 'entered-in-error' };
  // 'registered' (no result yet), 'cancelled' and 'unknown' carry no usable measurement.
  if (o.status === 'registered' || o.status === 'cancelled' || o.status === 'unknown') return { kind: 'skip', reason: 'not-a-result' };
  const patient = patientKey(o.subject);
  if (!patient) return { kind: 'skip', reason: 'no-subject' };
  const effective = o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.start;
  const effectiveMs = effective ? fhirDateTimeToMs(effective) : null;
  if (!effective || effectiveMs === null) return { kind: 'skip', reason: 'no-effective-time' };
  let vbmdMgCm3: number | null = null;
  if (!o.dataAbsentReason && o.valueQuantity?.value !== undefined) {
    const unit = o.valueQuantity.code ?? o.valueQuantity.unit;
    if (!unit || !MG_PER_CM3_UNITS.has(unit)) return { kind: 'skip', reason: 'unit' };
    vbmdMgCm3 = o.valueQuantity.value;
  }
  const basisCode = o.method?.coding?.find((c) => c.system === VBMD_CODE_SYSTEM)?.code;
  return {
    kind: 'scan',
    scan: {
      patient,
      observationId: o.id ?? null,
      effective,
      effectiveMs,
      vbmdMgCm3,
      // Recomputed from the value with the ACR thresholds, not read from interpretation: one rule everywhere.
      category: categoryForVbmd(vbmdMgCm3),
      basis: (basisCode && basisByCode.get(basisCode)) || null,
      status: o.status,
      studyUid: studyUidOf(o.partOf) ?? studyUidOf(o.derivedFrom),
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
