import type { Observation, RiskAssessment } from 'fhir/r4.js';
import { categoryForVbmd } from '../src/bmd/report.js';
import type { BmdCategory } from '../src/bmd/report.js';
import {
  OSTEOPOROSIS_SNOMED,
  RISK_PROBABILITY_SYSTEM,
  SNOMED,
  VBMD_BASIS_CODES,
  VBMD_CODE_SYSTEM,
  VBMD_LEVEL_CODE,
  VBMD_SUMMARY_CODE,
} from '../src/fhir/codes.js';

/**
 * Reads vBMD results back from FHIR (prefetch or search), strictly: only summary Observations with our
 * code, a usable status, a value in mg/cm3 and a date count. Anything else is skipped rather than guessed
 * at, because a misread unit or an entered-in-error result on a card could change treatment.
 */
export type VbmdBasis = keyof typeof VBMD_BASIS_CODES | 'unknown';

export interface VbmdLevelValue {
  level: string;
  vbmdMgCm3: number | null;
  /** Why the level has no value (excluded: fracture, lesion...), from dataAbsentReason.text. */
  absentReason?: string;
}

export interface VbmdResult {
  observationId?: string;
  vbmdMgCm3: number;
  effectiveMs: number;
  effective: string;
  /** ACR category recomputed from the value (the thresholds are the definition; not the stored text). */
  category: Exclude<BmdCategory, 'indeterminate'>;
  basis: VbmdBasis;
  /** Levels the summary used, e.g. "L1-L2" (bodySite.text), when the Observation says. */
  levelsText?: string;
  levels: VbmdLevelValue[];
  /** 'preliminary' = nominal (uncalibrated) conversion; the number is not traceable to a calibration. */
  status: Observation['status'];
  studyUid?: string;
}

export interface OsteoporosisRisk {
  basisObservation?: string;
  qualitativeRisk?: string;
  probability?: number;
  effectiveMs?: number;
}

const USABLE_STATUS = new Set<Observation['status']>(['final', 'amended', 'corrected', 'preliminary']);
const MG_PER_CM3_CODES = new Set(['mg/cm3', 'mg/mL']);

function isSummary(o: Observation): boolean {
  return (o.code?.coding ?? []).some((c) => c.system === VBMD_SUMMARY_CODE.system && c.code === VBMD_SUMMARY_CODE.code);
}

function basisOf(o: Observation): VbmdBasis {
  for (const c of o.method?.coding ?? []) {
    if (c.system !== VBMD_CODE_SYSTEM) continue;
    for (const [key, def] of Object.entries(VBMD_BASIS_CODES)) if (def.code === c.code) return key as VbmdBasis;
  }
  return 'unknown';
}

function levelsOf(o: Observation): VbmdLevelValue[] {
  const out: VbmdLevelValue[] = [];
  for (const comp of o.component ?? []) {
    const codings = comp.code?.coding ?? [];
    if (!codings.some((c) => c.system === VBMD_LEVEL_CODE.system && c.code === VBMD_LEVEL_CODE.code)) continue;
    const level = comp.code.text ?? codings.find((c) => c.system === SNOMED)?.display ?? '?';
    const q = comp.valueQuantity;
    const ok = q && typeof q.value === 'number' && Number.isFinite(q.value) && MG_PER_CM3_CODES.has(q.code ?? q.unit ?? '');
    out.push(
      ok ? { level, vbmdMgCm3: q.value as number } : { level, vbmdMgCm3: null, ...(comp.dataAbsentReason?.text ? { absentReason: comp.dataAbsentReason.text } : {}) },
    );
  }
  return out;
}

function studyUidOf(o: Observation): string | undefined {
  for (const r of [...(o.derivedFrom ?? []), ...(o.partOf ?? [])]) {
    const v = r.identifier?.value;
    if (v) return v.replace(/^urn:oid:/, '');
  }
  return undefined;
}

/** Parses one Observation; undefined when it is not a usable summary vBMD result. */
export function readVbmdObservation(o: Observation): VbmdResult | undefined {
  if (o.resourceType !== 'Observation' || !isSummary(o) || !USABLE_STATUS.has(o.status)) return undefined;
  const q = o.valueQuantity;
  if (!q || typeof q.value !== 'number' || !Number.isFinite(q.value)) return undefined;
  if (!MG_PER_CM3_CODES.has(q.code ?? '') && !MG_PER_CM3_CODES.has(q.unit ?? '')) return undefined;
  const effective = o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued;
  if (!effective) return undefined;
  const effectiveMs = Date.parse(effective);
  if (!Number.isFinite(effectiveMs)) return undefined;
  const category = categoryForVbmd(q.value);
  if (category === 'indeterminate') return undefined;
  const studyUid = studyUidOf(o);
  return {
    ...(o.id ? { observationId: o.id } : {}),
    vbmdMgCm3: q.value,
    effectiveMs,
    effective,
    category,
    basis: basisOf(o),
    ...(o.bodySite?.text ? { levelsText: o.bodySite.text } : {}),
    levels: levelsOf(o),
    status: o.status,
    ...(studyUid ? { studyUid } : {}),
  };
}

/**
 * Usable results, newest first, one per scan: a re-analysis with a newer model version writes a second
 * Observation for the same study; the latest issued one stands for that scan in the trend.
 */
export function readVbmdResults(resources: readonly unknown[]): VbmdResult[] {
  const byScan = new Map<string, { r: VbmdResult; issued: number }>();
  for (const res of resources) {
    const o = res as Observation;
    const r = readVbmdObservation(o);
    if (!r) continue;
    const key = r.studyUid ?? `t${r.effectiveMs}`;
    const issued = Date.parse(o.issued ?? '') || 0;
    const prev = byScan.get(key);
    if (!prev || issued > prev.issued) byScan.set(key, { r, issued });
  }
  return [...byScan.values()].map((v) => v.r).sort((a, b) => b.effectiveMs - a.effectiveMs);
}

/** The osteoporosis RiskAssessment whose basis is `observationId` (or the newest one when not linked). */
export function readOsteoporosisRisk(resources: readonly unknown[], observationId: string | undefined): OsteoporosisRisk | undefined {
  let best: OsteoporosisRisk | undefined;
  for (const res of resources) {
    const ra = res as RiskAssessment;
    if (ra.resourceType !== 'RiskAssessment' || ra.status === 'entered-in-error' || ra.status === 'cancelled') continue;
    const pred = (ra.prediction ?? []).find((p) =>
      (p.outcome?.coding ?? []).some((c) => c.system === OSTEOPOROSIS_SNOMED.system && c.code === OSTEOPOROSIS_SNOMED.code),
    );
    if (!pred) continue;
    const basis = (ra.basis ?? []).map((b) => b.reference ?? '');
    const linked = observationId !== undefined && basis.some((b) => b === `Observation/${observationId}` || b.endsWith(`/Observation/${observationId}`));
    if (observationId !== undefined && !linked) continue;
    const qualitative = (pred.qualitativeRisk?.coding ?? []).find((c) => c.system === RISK_PROBABILITY_SYSTEM)?.code;
    const effectiveMs = Date.parse(ra.occurrenceDateTime ?? '');
    const candidate: OsteoporosisRisk = {
      ...(linked ? { basisObservation: `Observation/${observationId}` } : {}),
      ...(qualitative ? { qualitativeRisk: qualitative } : {}),
      ...(typeof pred.probabilityDecimal === 'number' ? { probability: pred.probabilityDecimal } : {}),
      ...(Number.isFinite(effectiveMs) ? { effectiveMs } : {}),
    };
    if (!best || (candidate.effectiveMs ?? 0) > (best.effectiveMs ?? 0)) best = candidate;
  }
  return best;
}

/** Resources of a searchset Bundle (prefetch value), or [] for null / anything else. */
export function bundleResources(value: unknown): unknown[] {
  const b = value as { resourceType?: string; entry?: { resource?: unknown }[] } | null | undefined;
  if (!b || b.resourceType !== 'Bundle') return [];
  return (b.entry ?? []).map((e) => e.resource).filter((r): r is object => typeof r === 'object' && r !== null);
}
