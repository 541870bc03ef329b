import { z } from 'zod';
import type { BmdCategory } from '../bmd/report.js';
import { categoryForVbmd } from '../bmd/report.js';
import type { AlgorithmFields, CalibrationFields } from './analysis-fields.js';
import { readAnalysisFields } from './analysis-fields.js';
import { DICOM_UID_SYSTEM, UCUM_SYSTEM, VBMD_BASIS_CODES, VBMD_CODE_SYSTEM, VBMD_LEVEL_CODE, VBMD_SUMMARY_CODE } from './codes.js';

/**
 * THE reader of vBMD results (the summary Observation src/fhir/observation.ts writes), shared by the CDS
 * card, the SMART app (bundled for the browser: no node imports here) and the cohort, so they cannot
 * disagree. One rule for:
 *  - status: final, amended, corrected, preliminary are results; entered-in-error is dropped; registered,
 *    cancelled, unknown are not results; anything else is invalid.
 *  - units: UCUM mass concentrations are converted to mg/cm3 (mg/mL and kg/m3 are the same number, g/cm3
 *    and g/mL x1000); any other unit, or a non-UCUM system, is refused rather than guessed.
 *  - time: effectiveDateTime (or effectiveInstant, effectivePeriod.start) with a zone when a time is given;
 *    never `issued` (the release time would misplace the scan on a trend).
 *  - superseded: one current result per study. vbmd updates a study's result in place (lifecycle.ts), so a
 *    search sees one; a second Observation of the same study (an older writer, another system) is
 *    superseded by the one issued last.
 *  - structure: calibration, contrast, summary levels and algorithm from the vbmd-analysis extension; never
 *    parsed out of note text.
 */
export type VbmdBasis = keyof typeof VBMD_BASIS_CODES | 'unknown';
export type ResultStatus = 'final' | 'amended' | 'corrected' | 'preliminary';
export type SkipReason = 'invalid' | 'not-vbmd' | 'entered-in-error' | 'not-a-result' | 'no-subject' | 'no-effective-time' | 'unit' | 'superseded';

export interface LevelValue {
  level: string;
  vbmdMgCm3: number | null;
  included: boolean;
  /** Why the level has no value (fracture, lesion...), from its dataAbsentReason. */
  exclusionReason?: string;
}

export interface VbmdResult {
  observationId: string | null;
  /** Patient id (`Patient/123` -> `123`), or the whole reference when it names no Patient by id. */
  patient: string | null;
  status: ResultStatus;
  effective: string;
  effectiveMs: number;
  issuedMs: number | null;
  /** Summary vBMD in mg/cm3; null when indeterminate (dataAbsentReason). */
  vbmdMgCm3: number | null;
  /** ACR category recomputed from the value: the thresholds are the definition, not the stored code. */
  category: BmdCategory;
  basis: VbmdBasis;
  basisText: string;
  /** Levels the summary is the mean of (structured), e.g. ["L1", "L2"]. */
  summaryLevels: string[];
  levels: LevelValue[];
  calibration: CalibrationFields | null;
  /** Not traceable to any calibration: the nominal default (or a legacy `preliminary` without the field). */
  uncalibrated: boolean;
  contrastEnhanced: boolean | null;
  algorithm: AlgorithmFields;
  device: { reference?: string; display?: string } | null;
  studyUid: string | null;
  imagingStudy: { reference?: string; studyUid?: string; display?: string } | null;
  notes: string[];
  analysisKey: string | null;
}

export type ReadOutcome = { ok: true; result: VbmdResult } | { ok: false; reason: SkipReason };

/** zod schemas of the FHIR datatypes the readers look at (finding-reader.ts shares them). */
export const fhirCoding = z.object({ system: z.string().optional(), code: z.string().optional(), display: z.string().optional() });
export const fhirConcept = z.object({ coding: z.array(fhirCoding).optional(), text: z.string().optional() });
export const fhirQuantity = z.object({ value: z.number().optional(), unit: z.string().optional(), code: z.string().optional(), system: z.string().optional() });
export const fhirReference = z.object({
  reference: z.string().optional(),
  display: z.string().optional(),
  identifier: z.object({ system: z.string().optional(), value: z.string().optional() }).optional(),
});
const observationSchema = z.object({
  resourceType: z.literal('Observation'),
  id: z.string().optional(),
  status: z.string(),
  code: fhirConcept,
  subject: fhirReference.optional(),
  effectiveDateTime: z.string().optional(),
  effectiveInstant: z.string().optional(),
  effectivePeriod: z.object({ start: z.string().optional() }).optional(),
  issued: z.string().optional(),
  valueQuantity: fhirQuantity.optional(),
  dataAbsentReason: fhirConcept.optional(),
  method: fhirConcept.optional(),
  bodySite: fhirConcept.optional(),
  note: z.array(z.object({ text: z.string() })).optional(),
  device: fhirReference.optional(),
  partOf: z.array(fhirReference).optional(),
  derivedFrom: z.array(fhirReference).optional(),
  extension: z.array(z.unknown()).optional(),
  component: z.array(z.object({ code: fhirConcept, valueQuantity: fhirQuantity.optional(), dataAbsentReason: fhirConcept.optional() })).optional(),
});
type Obs = z.infer<typeof observationSchema>;
/** The same schema without the per-level components and the notes: the cohort reads a million results and
 * needs neither (zod drops keys a schema does not name, without looking at them). */
const summarySchema = observationSchema.omit({ component: true, note: true });

export const RESULT_STATUSES: ReadonlySet<string> = new Set(['final', 'amended', 'corrected', 'preliminary']);
export const NOT_A_RESULT: ReadonlySet<string> = new Set<string>(['registered', 'cancelled', 'unknown']);
/** Factor to mg/cm3 by UCUM code (case-sensitive UCUM; `mL` and `ml` are both seen in the wild). */
export const TO_MG_PER_CM3: Readonly<Record<string, number>> = { 'mg/cm3': 1, 'mg/mL': 1, 'mg/ml': 1, 'kg/m3': 1, 'g/L': 1, 'g/cm3': 1000, 'g/mL': 1000, 'g/ml': 1000 };
/** Display units some systems send without a code. */
export const UNIT_TEXT: Readonly<Record<string, number>> = { ...TO_MG_PER_CM3, 'mg/cm³': 1, 'mg/cc': 1, 'g/cm³': 1000, 'g/cc': 1000 };

/** mg/cm3, or null when the unit is missing, unknown or not UCUM. */
export function toMgCm3(q: z.infer<typeof fhirQuantity> | undefined): number | null | 'unit' {
  if (!q || typeof q.value !== 'number' || !Number.isFinite(q.value)) return null;
  let factor: number | undefined;
  if (q.code !== undefined) factor = q.system === undefined || q.system === UCUM_SYSTEM ? TO_MG_PER_CM3[q.code] : undefined;
  else if (q.system === undefined && q.unit !== undefined) factor = UNIT_TEXT[q.unit];
  if (factor === undefined) return 'unit';
  return Math.round(q.value * factor * 1e6) / 1e6;
}

/** FHIR dateTime to epoch ms. Partial dates are UTC starts; a time without a zone is not valid FHIR and is
 * refused rather than read in whatever zone the reader runs in. */
export function fhirDateTimeToMs(value: string): number | null {
  if (!/^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/** `Patient/123`, `https://x/fhir/Patient/123` and `Patient/123/_history/2` name `123`; anything else is kept
 * whole (so it never merges with another patient); a logical identifier becomes `identifier:system|value`. */
export function patientKey(ref: z.infer<typeof fhirReference> | undefined): string | null {
  if (!ref) return null;
  if (ref.reference) {
    const m = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref.reference);
    return m ? m[1]! : ref.reference;
  }
  if (ref.identifier?.value) return `identifier:${ref.identifier.system ?? ''}|${ref.identifier.value}`;
  return null;
}

const hasCode = (c: z.infer<typeof fhirConcept> | undefined, system: string, code: string): boolean => !!c?.coding?.some((x) => x.system === system && x.code === code);
const BASIS_BY_CODE = new Map<string, VbmdBasis>(Object.entries(VBMD_BASIS_CODES).map(([b, c]) => [c.code, b as VbmdBasis]));

function levelsOf(o: Obs): LevelValue[] {
  const out: LevelValue[] = [];
  for (const comp of o.component ?? []) {
    if (!hasCode(comp.code, VBMD_LEVEL_CODE.system, VBMD_LEVEL_CODE.code)) continue;
    const level = comp.code.text ?? comp.code.coding?.find((x) => x.system !== VBMD_CODE_SYSTEM)?.display?.replace(/ vertebra$/, '') ?? '?';
    const v = toMgCm3(comp.valueQuantity);
    if (typeof v === 'number') out.push({ level, vbmdMgCm3: v, included: true });
    else {
      const why = comp.dataAbsentReason?.text ?? comp.dataAbsentReason?.coding?.[0]?.display ?? 'not measured';
      out.push({ level, vbmdMgCm3: null, included: false, exclusionReason: why.replace(/^Excluded:\s*/, '') });
    }
  }
  return out;
}

function studyOf(o: Obs): VbmdResult['imagingStudy'] {
  const refs = [...(o.partOf ?? []), ...(o.derivedFrom ?? [])];
  const withUid = refs.find((r) => r.identifier?.system === DICOM_UID_SYSTEM && r.identifier.value);
  const r = withUid ?? refs.find((x) => x.reference?.startsWith('ImagingStudy/')) ?? refs[0];
  if (!r) return null;
  const uid = withUid?.identifier?.value?.replace(/^urn:oid:/, '');
  return { ...(r.reference ? { reference: r.reference } : {}), ...(uid ? { studyUid: uid } : {}), ...(r.display ? { display: r.display } : {}) };
}

/** `detail: false` leaves `levels` and `notes` empty (same rules for everything else). */
export function readVbmdResult(raw: unknown, opts: { detail?: boolean } = {}): ReadOutcome {
  const parsed = (opts.detail === false ? summarySchema : observationSchema).safeParse(raw) as z.ZodSafeParseResult<Obs>;
  if (!parsed.success) return { ok: false, reason: 'invalid' };
  const o = parsed.data;
  if (!hasCode(o.code, VBMD_SUMMARY_CODE.system, VBMD_SUMMARY_CODE.code)) return { ok: false, reason: 'not-vbmd' };
  if (o.status === 'entered-in-error') return { ok: false, reason: 'entered-in-error' };
  if (NOT_A_RESULT.has(o.status)) return { ok: false, reason: 'not-a-result' };
  if (!RESULT_STATUSES.has(o.status)) return { ok: false, reason: 'invalid' };
  const patient = patientKey(o.subject);
  if (!patient) return { ok: false, reason: 'no-subject' };
  const effective = o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.start;
  const effectiveMs = effective ? fhirDateTimeToMs(effective) : null;
  if (!effective || effectiveMs === null) return { ok: false, reason: 'no-effective-time' };
  const value = o.dataAbsentReason ? null : toMgCm3(o.valueQuantity);
  if (value === 'unit') return { ok: false, reason: 'unit' };
  const fields = readAnalysisFields(o);
  const basisCode = o.method?.coding?.find((c) => c.system === VBMD_CODE_SYSTEM)?.code;
  const study = studyOf(o);
  const status = o.status as ResultStatus;
  const calibration = fields?.calibration ?? null;
  return {
    ok: true,
    result: {
      observationId: o.id ?? null,
      patient,
      status,
      effective,
      effectiveMs,
      issuedMs: o.issued ? fhirDateTimeToMs(o.issued) : null,
      vbmdMgCm3: value,
      category: categoryForVbmd(value),
      basis: (basisCode && BASIS_BY_CODE.get(basisCode)) || 'unknown',
      basisText: o.method?.text ?? o.method?.coding?.[0]?.display ?? 'Basis not stated',
      summaryLevels: fields?.summaryLevels ?? [],
      levels: levelsOf(o),
      calibration,
      // Without the structured field (results of an older writer), `preliminary` was how vbmd said it.
      uncalibrated: calibration ? !calibration.traceable : status === 'preliminary',
      contrastEnhanced: fields?.contrastEnhanced ?? null,
      algorithm: fields?.algorithm ?? { engine: null, model: null },
      device: o.device ? { ...(o.device.reference ? { reference: o.device.reference } : {}), ...(o.device.display ? { display: o.device.display } : {}) } : null,
      studyUid: study?.studyUid ?? null,
      imagingStudy: study,
      notes: (o.note ?? []).map((n) => n.text),
      analysisKey: fields?.analysisKey ?? null,
    },
  };
}

/** Whether `b` supersedes `a`: the same study of the same patient, issued later; a tie keeps the lower
 * value (the cautious reading, as everywhere), so the answer never depends on the order of arrival. */
export function supersedes(b: VbmdResult, a: VbmdResult): boolean {
  if (!a.studyUid || a.studyUid !== b.studyUid || a.patient !== b.patient) return false;
  const ai = a.issuedMs ?? -Infinity;
  const bi = b.issuedMs ?? -Infinity;
  return bi > ai || (bi === ai && (b.vbmdMgCm3 ?? Infinity) < (a.vbmdMgCm3 ?? Infinity));
}

export interface ReadResults {
  /** Current results, newest scan first (ties: the lower value first, the cautious reading). */
  results: VbmdResult[];
  skipped: { id?: string; reason: SkipReason }[];
}

/** All current vBMD results among `resources` (anything else is skipped with its reason). */
export function readVbmdResults(resources: readonly unknown[]): ReadResults {
  const skipped: ReadResults['skipped'] = [];
  const byStudy = new Map<string, VbmdResult>();
  const loose: VbmdResult[] = [];
  for (const raw of resources) {
    const id = (raw as { id?: unknown } | null)?.id;
    const r = readVbmdResult(raw);
    if (!r.ok) {
      if (r.reason !== 'not-vbmd' || (raw as { resourceType?: unknown } | null)?.resourceType === 'Observation') skipped.push({ ...(typeof id === 'string' ? { id } : {}), reason: r.reason });
      continue;
    }
    if (!r.result.studyUid) {
      loose.push(r.result);
      continue;
    }
    const key = `${r.result.patient}\u0000${r.result.studyUid}`;
    const prev = byStudy.get(key);
    if (!prev) byStudy.set(key, r.result);
    else {
      const [keep, drop] = supersedes(r.result, prev) ? [r.result, prev] : [prev, r.result];
      byStudy.set(key, keep);
      skipped.push({ ...(drop.observationId ? { id: drop.observationId } : {}), reason: 'superseded' });
    }
  }
  const results = [...byStudy.values(), ...loose].sort(
    (a, b) => b.effectiveMs - a.effectiveMs || (a.vbmdMgCm3 ?? Infinity) - (b.vbmdMgCm3 ?? Infinity),
  );
  return { results, skipped };
}

/** Results with a value (indeterminate ones left out), newest first. */
export function measuredResults(results: readonly VbmdResult[]): (VbmdResult & { vbmdMgCm3: number })[] {
  return results.filter((r): r is VbmdResult & { vbmdMgCm3: number } => r.vbmdMgCm3 !== null);
}

/** Resources of a searchset Bundle (a prefetch value), or [] for null / anything else. */
export function bundleResources(value: unknown): unknown[] {
  const b = value as { resourceType?: string; entry?: unknown } | null | undefined;
  if (!b || b.resourceType !== 'Bundle' || !Array.isArray(b.entry)) return [];
  return (b.entry as { resource?: unknown }[]).map((e) => e?.resource).filter((r): r is object => typeof r === 'object' && r !== null);
}
