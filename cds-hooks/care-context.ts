import { z } from 'zod';
import { fhirDateTimeToMs } from '../src/fhir/result-reader.js';
import { extractMedication } from '../src/population/resources.js';
import type { TherapyMatcher } from '../src/population/therapy-value-set.js';

/**
 * What care is already in place for bone health, read from the patient's record, so the patient-view card
 * does not warn about what is being handled (alert fatigue): bone-protective therapy (the bone-therapy value
 * set the cohort uses, src/population/therapy-value-set.ts, same "active" rules), a DXA in the last two
 * years, or a DXA already ordered. `unknown` = the record could not be read (no prefetch, no FHIR access):
 * then nothing is assumed and the card says it could not check.
 */
export const LOINC = 'http://loinc.org';
export const CPT_SYSTEM = 'http://www.ama-assn.org/go/cpt';
/** DXA results (LOINC; ../shared/STANDARDS.md section 3): L-spine BMD and T-score, hip, femur, bone BMD,
 * DXA panel, DXA study report. */
export const DXA_LOINC = ['24966-4', '38267-1', '46278-8', '24701-5', '46383-6', '83311-1', '38269-7'] as const;
/** DXA procedures and orders (CPT): 77080 axial, 77081 appendicular, 77085 axial with vertebral fracture
 * assessment, 77086 vertebral fracture assessment. */
export const DXA_CPT = ['77080', '77081', '77085', '77086'] as const;
/** Words that name a DXA when a record carries only text or other codes. */
const DXA_WORDS = /\b(DXA|DEXA|dual[- ]energy x[- ]?ray absorptiometry|bone densitometry)\b/i;
export const DXA_RECENT_YEARS = 2;
const YEAR_MS = 365.25 * 86_400_000;

const coding = z.object({ system: z.string().optional(), code: z.string().optional(), display: z.string().optional() });
const concept = z.object({ coding: z.array(coding).optional(), text: z.string().optional() });
const dxaRecord = z.object({
  resourceType: z.enum(['Observation', 'DiagnosticReport', 'Procedure', 'ServiceRequest']),
  status: z.string(),
  code: concept.optional(),
  effectiveDateTime: z.string().optional(),
  effectivePeriod: z.object({ start: z.string().optional(), end: z.string().optional() }).optional(),
  issued: z.string().optional(),
  performedDateTime: z.string().optional(),
  performedPeriod: z.object({ start: z.string().optional(), end: z.string().optional() }).optional(),
});

export function isDxaCode(c: z.infer<typeof concept> | undefined): boolean {
  if (!c) return false;
  for (const x of c.coding ?? []) {
    if (x.system === LOINC && (DXA_LOINC as readonly string[]).includes(x.code ?? '')) return true;
    if (x.system === CPT_SYSTEM && (DXA_CPT as readonly string[]).includes(x.code ?? '')) return true;
    if (x.display && DXA_WORDS.test(x.display)) return true;
  }
  return !!c.text && DXA_WORDS.test(c.text);
}

export interface CareContext {
  /** The active bone-protective drug, null when none; 'unknown' when the medications could not be read. */
  therapy: string | null | 'unknown';
  /** Time of the newest DXA within DXA_RECENT_YEARS, null when none; 'unknown' when not readable. */
  recentDxaMs: number | null | 'unknown';
  /** An open (draft, active, on-hold) DXA order exists; 'unknown' when orders could not be read. */
  dxaOrdered: boolean | 'unknown';
}

/** Each input: the resources of one prefetch key, or undefined when the service could not obtain them. */
export interface CareInputs {
  /** MedicationRequest and MedicationStatement keys. */
  medications: readonly (readonly unknown[] | undefined)[];
  /** Observation (DXA results) and Procedure keys. */
  dxaResults: readonly (readonly unknown[] | undefined)[];
  dxaOrders: readonly unknown[] | undefined;
}

const DONE = new Set(['final', 'amended', 'corrected', 'completed', 'appended']);
const OPEN_ORDER = new Set(['draft', 'active', 'on-hold']);

function whenDone(r: z.infer<typeof dxaRecord>): number | null {
  const t = r.effectiveDateTime ?? r.effectivePeriod?.end ?? r.effectivePeriod?.start ?? r.performedDateTime ?? r.performedPeriod?.end ?? r.performedPeriod?.start ?? r.issued;
  return t ? fhirDateTimeToMs(t) : null;
}

/** What is found counts even when another key is missing; "none" is only said when every key was read. */
export function readCareContext(inputs: CareInputs, matcher: TherapyMatcher, nowMs: number): CareContext {
  let therapy: string | null = null;
  for (const list of inputs.medications) {
    for (const raw of list ?? []) {
      const x = extractMedication(raw, matcher, nowMs);
      if (x.kind === 'therapy' && x.therapy.active && (therapy === null || x.therapy.therapy.ingredient < therapy)) therapy = x.therapy.therapy.ingredient;
    }
  }
  let recentDxaMs: number | null = null;
  for (const list of inputs.dxaResults) {
    for (const raw of list ?? []) {
      const p = dxaRecord.safeParse(raw);
      if (!p.success || p.data.resourceType === 'ServiceRequest' || !DONE.has(p.data.status) || !isDxaCode(p.data.code)) continue;
      const t = whenDone(p.data);
      if (t === null || t < nowMs - DXA_RECENT_YEARS * YEAR_MS || t > nowMs + 86_400_000) continue;
      if (recentDxaMs === null || t > recentDxaMs) recentDxaMs = t;
    }
  }
  const dxaOrdered =
    inputs.dxaOrders?.some((raw) => {
      const p = dxaRecord.safeParse(raw);
      return p.success && p.data.resourceType === 'ServiceRequest' && OPEN_ORDER.has(p.data.status) && isDxaCode(p.data.code);
    }) ?? 'unknown';
  return {
    therapy: therapy ?? (inputs.medications.some((l) => l === undefined) ? 'unknown' : null),
    recentDxaMs: recentDxaMs ?? (inputs.dxaResults.some((l) => l === undefined) ? 'unknown' : null),
    dxaOrdered,
  };
}

/** Whether the record shows the bone problem is already being handled. */
export function careInPlace(c: CareContext): boolean {
  return (typeof c.therapy === 'string' && c.therapy !== 'unknown') || typeof c.recentDxaMs === 'number' || c.dxaOrdered === true;
}
