import { z } from 'zod';
import { categoryForVbmd } from '../../src/bmd/report.js';
import { VBMD_BASIS_CODES, VBMD_CODE_SYSTEM, VBMD_LEVEL_CODE, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';
import type { LevelValue, PatientSummary, RiskSummary, VbmdStudy } from './model.js';

/**
 * FHIR resources from the server are external input: each is checked with zod at this edge and turned into
 * the app's small models. A resource that is not a vBMD result (wrong code, no date) is skipped and counted,
 * never half-shown. Layout: src/fhir/observation.ts (summary value + one component per level; excluded
 * levels carry dataAbsentReason with the reason; notes carry calibration, caveats and the model version).
 */

const coding = z.object({ system: z.string().optional(), code: z.string().optional(), display: z.string().optional() });
const concept = z.object({ coding: z.array(coding).optional(), text: z.string().optional() });
const quantity = z.object({ value: z.number().optional(), unit: z.string().optional(), code: z.string().optional() });
const reference = z.object({
  reference: z.string().optional(),
  display: z.string().optional(),
  identifier: z.object({ system: z.string().optional(), value: z.string().optional() }).optional(),
});

const observation = z.object({
  resourceType: z.literal('Observation'),
  id: z.string(),
  status: z.string(),
  code: concept,
  effectiveDateTime: z.string().optional(),
  issued: z.string().optional(),
  valueQuantity: quantity.optional(),
  interpretation: z.array(concept).optional(),
  method: concept.optional(),
  bodySite: concept.optional(),
  note: z.array(z.object({ text: z.string() })).optional(),
  device: reference.optional(),
  derivedFrom: z.array(reference).optional(),
  partOf: z.array(reference).optional(),
  component: z
    .array(
      z.object({
        code: concept,
        valueQuantity: quantity.optional(),
        dataAbsentReason: concept.optional(),
      }),
    )
    .optional(),
});

const hasCode = (c: z.infer<typeof concept> | undefined, system: string, code: string): boolean =>
  !!c?.coding?.some((x) => x.system === system && x.code === code);

const BASIS_BY_CODE = new Map<string, VbmdStudy['basis']>(
  Object.entries(VBMD_BASIS_CODES).map(([basis, c]) => [c.code, basis as VbmdStudy['basis']]),
);

function levelOf(c: z.infer<typeof concept>): string {
  return c.text ?? c.coding?.find((x) => x.system !== VBMD_CODE_SYSTEM)?.display?.replace(/ vertebra$/, '') ?? '?';
}

function parseLevel(comp: NonNullable<z.infer<typeof observation>['component']>[number]): LevelValue | null {
  if (!hasCode(comp.code, VBMD_LEVEL_CODE.system, VBMD_LEVEL_CODE.code)) return null;
  const level = levelOf(comp.code);
  const v = comp.valueQuantity?.value;
  if (typeof v === 'number' && Number.isFinite(v)) return { level, vbmdMgCm3: v, included: true };
  const why = comp.dataAbsentReason?.text ?? comp.dataAbsentReason?.coding?.[0]?.display ?? 'not measured';
  return { level, vbmdMgCm3: null, included: false, exclusionReason: why.replace(/^Excluded:\s*/, '') };
}

/** The summary's levels, from the note written by src/fhir/observation-notes.ts levelsUsedText ("... = mean of
 * L1 72.0 mg/cm3 and L2 68.0 mg/cm3 (basis: lumbar)." or "... = single level T12 ..."), else from bodySite
 * text ("L1-L2" for two levels). Empty when neither says. */
export function summaryLevelsOf(notes: readonly string[], bodySiteText: string | undefined): string[] {
  for (const n of notes) {
    const mean = /= mean of ([CTLS]\d{1,2}) .*? and ([CTLS]\d{1,2}) /.exec(n);
    if (mean) return [mean[1], mean[2]];
    const single = /= single level ([CTLS]\d{1,2})\b/.exec(n);
    if (single) return [single[1]];
  }
  const m = bodySiteText ? /^([CTLS]\d{1,2})(?:-([CTLS]\d{1,2}))?$/.exec(bodySiteText) : null;
  return m ? [m[1], ...(m[2] ? [m[2]] : [])] : [];
}

/** "(sha256 <64 hex>)" shortened to its first 12 digits for display. */
export function shortenSha(text: string): string {
  return text.replace(/\b(sha256 )([0-9a-f]{12})[0-9a-f]{52}\b/g, '$1$2…');
}

export interface ParseResult<T> {
  items: T[];
  /** Resources that were not usable, with why (shown to the user as a count, details in the console). */
  skipped: { id?: string; why: string }[];
}

export function parseVbmdObservation(raw: unknown): VbmdStudy | { skip: string } {
  const p = observation.safeParse(raw);
  if (!p.success) return { skip: `not a valid Observation (${p.error.issues[0]?.path.join('.')}: ${p.error.issues[0]?.message})` };
  const o = p.data;
  if (!hasCode(o.code, VBMD_SUMMARY_CODE.system, VBMD_SUMMARY_CODE.code)) return { skip: 'not a vBMD summary Observation' };
  if (o.status === 'entered-in-error' || o.status === 'cancelled') return { skip: `status ${o.status}` };
  const when = o.effectiveDateTime ?? o.issued;
  const effectiveMs = when ? Date.parse(when) : Number.NaN;
  if (!Number.isFinite(effectiveMs)) return { skip: 'no acquisition date' };

  const value = o.valueQuantity?.value;
  const vbmdMgCm3 = typeof value === 'number' && Number.isFinite(value) ? value : null;
  const unit = o.valueQuantity?.unit ?? o.valueQuantity?.code ?? 'mg/cm3';
  if (vbmdMgCm3 !== null && unit !== 'mg/cm3' && unit !== 'mg/mL') return { skip: `unexpected unit ${unit}` };
  // The number decides the category with the ACR thresholds (as the CDS card does); the server's
  // interpretation coding is the same mapping, so showing the computed one cannot disagree with the value.
  const category = categoryForVbmd(vbmdMgCm3);

  const basisCode = o.method?.coding?.find((c) => c.system === VBMD_CODE_SYSTEM)?.code;
  const basis = (basisCode && BASIS_BY_CODE.get(basisCode)) || 'unknown';
  const study = o.derivedFrom?.[0] ?? o.partOf?.[0];
  const notes = (o.note ?? []).map((n) => n.text);
  const calibration = notes.find((n) => n.startsWith('Calibration:'))?.replace(/^Calibration:\s*/, '');
  const computedBy = notes.find((n) => n.startsWith('Computed by'));
  const device = computedBy ? shortenSha(computedBy) : o.device?.display;
  const uid = study?.identifier?.value?.replace(/^urn:oid:/, '');

  return {
    observationId: o.id,
    effective: when as string,
    effectiveMs,
    vbmdMgCm3,
    unit: 'mg/cm3',
    category,
    basis,
    basisText: o.method?.text ?? o.method?.coding?.[0]?.display ?? 'Basis not stated',
    levels: (o.component ?? []).map(parseLevel).filter((l): l is LevelValue => l !== null),
    summaryLevels: summaryLevelsOf(notes, o.bodySite?.text),
    ...(study ? { imagingStudy: { reference: study.reference, studyUid: uid, display: study.display } } : {}),
    ...(device ? { device } : {}),
    notes,
    ...(calibration ? { calibration } : {}),
    status: o.status,
  };
}

export function parseVbmdObservations(resources: readonly unknown[]): ParseResult<VbmdStudy> {
  const items: VbmdStudy[] = [];
  const skipped: ParseResult<VbmdStudy>['skipped'] = [];
  for (const r of resources) {
    const s = parseVbmdObservation(r);
    if ('skip' in s) skipped.push({ id: (r as { id?: string })?.id, why: s.skip });
    else items.push(s);
  }
  return { items, skipped };
}

const riskAssessment = z.object({
  resourceType: z.literal('RiskAssessment'),
  id: z.string(),
  status: z.string(),
  occurrenceDateTime: z.string().optional(),
  basis: z.array(reference).optional(),
  prediction: z
    .array(
      z.object({
        outcome: concept.optional(),
        probabilityDecimal: z.number().optional(),
        qualitativeRisk: concept.optional(),
      }),
    )
    .optional(),
});

/** The most recent usable RiskAssessment (by occurrence date), or null. */
export function latestRisk(resources: readonly unknown[]): RiskSummary | null {
  let best: { r: RiskSummary; t: number } | null = null;
  for (const raw of resources) {
    const p = riskAssessment.safeParse(raw);
    if (!p.success || p.data.status === 'entered-in-error') continue;
    const ra = p.data;
    const pred = ra.prediction?.[0];
    if (!pred) continue;
    const t = ra.occurrenceDateTime ? Date.parse(ra.occurrenceDateTime) : 0;
    const r: RiskSummary = {
      id: ra.id,
      ...(ra.occurrenceDateTime ? { occurrence: ra.occurrenceDateTime } : {}),
      outcome: pred.outcome?.text ?? pred.outcome?.coding?.[0]?.display ?? 'Osteoporosis',
      ...(pred.probabilityDecimal !== undefined ? { probability: pred.probabilityDecimal } : {}),
      ...(pred.qualitativeRisk ? { qualitativeRisk: pred.qualitativeRisk.text ?? pred.qualitativeRisk.coding?.[0]?.display ?? pred.qualitativeRisk.coding?.[0]?.code } : {}),
      ...(ra.basis?.[0]?.reference ? { basis: ra.basis[0].reference } : {}),
      status: ra.status,
    };
    if (!best || t > best.t) best = { r, t };
  }
  return best?.r ?? null;
}

const patient = z.object({
  resourceType: z.literal('Patient'),
  id: z.string(),
  name: z.array(z.object({ text: z.string().optional(), family: z.string().optional(), given: z.array(z.string()).optional() })).optional(),
  gender: z.string().optional(),
  birthDate: z.string().optional(),
  identifier: z.array(z.object({ value: z.string().optional(), type: concept.optional() })).optional(),
});

export function parsePatient(raw: unknown): PatientSummary | null {
  const p = patient.safeParse(raw);
  if (!p.success) return null;
  const n = p.data.name?.[0];
  const name = n?.text ?? ([...(n?.given ?? []), n?.family].filter(Boolean).join(' ') || `Patient ${p.data.id}`);
  return {
    id: p.data.id,
    name,
    ...(p.data.gender ? { gender: p.data.gender } : {}),
    ...(p.data.birthDate ? { birthDate: p.data.birthDate } : {}),
    ...(p.data.identifier?.[0]?.value ? { identifier: p.data.identifier[0].value } : {}),
  };
}
