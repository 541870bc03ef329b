import { z } from 'zod';
import type { CalibrationFields } from '../../src/fhir/analysis-fields.js';
import { readOsteoporosisRisks } from '../../src/fhir/finding-reader.js';
import type { SkipReason, VbmdResult } from '../../src/fhir/result-reader.js';
import { readVbmdResult, readVbmdResults } from '../../src/fhir/result-reader.js';
import type { PatientSummary, RiskSummary, VbmdStudy } from './model.js';

/**
 * FHIR resources from the server are external input. vBMD results are read by src/fhir/result-reader.ts,
 * the same reader the CDS card and the cohort use (one rule for status, units, time, superseded results;
 * calibration and algorithm from structured fields, never from note text), then turned into the app's
 * small model. A resource that is not a usable vBMD result is skipped and counted, never half-shown.
 */

const SKIP_WORDS: Record<SkipReason, string> = {
  invalid: 'not a valid vBMD Observation',
  'not-vbmd': 'not a vBMD summary Observation',
  'entered-in-error': 'status entered-in-error',
  'not-a-result': 'not a result (registered, cancelled or unknown)',
  'no-subject': 'no patient',
  'no-effective-time': 'no acquisition date',
  unit: 'unit is not a mass concentration (mg/cm3)',
  superseded: 'superseded by a later result of the same study',
};

/** "(sha256 <64 hex>)" shortened to its first 12 digits for display. */
export function shortenSha(text: string): string {
  return text.replace(/\b(sha256 )([0-9a-f]{12})[0-9a-f]{52}\b/g, '$1$2…');
}

const CALIBRATION_WORDS: Record<CalibrationFields['method'], string> = {
  phantom: 'in-scan phantom calibration',
  asynchronous: 'asynchronous phantom calibration (site, scanner and kVp)',
  'phantomless-internal': "phantomless internal calibration from the scan's own tissues",
  nominal: 'nominal kVp default (UNCALIBRATED)',
  unknown: 'calibration method not recognised',
};

/** The calibration in words, from the structured field. */
export function calibrationText(c: CalibrationFields): string {
  const fit = c.slopeHuPerMgCm3 !== null && c.interceptHu !== null ? `; trabecular HU = ${c.interceptHu.toFixed(2)} + ${c.slopeHuPerMgCm3.toFixed(4)} x vBMD (mg/cm3)` : '';
  return `${CALIBRATION_WORDS[c.method]}${fit}${c.traceable ? '' : '; not traceable to any calibration'}`;
}

function deviceText(r: VbmdResult): string | undefined {
  const { engine, model } = r.algorithm;
  if (engine) return shortenSha(`${engine.name} ${engine.version}${model ? ` with model ${model.name} ${model.version} (sha256 ${model.sha256})` : ' without a model'}`);
  return r.device?.display;
}

export interface ParseResult<T> {
  items: T[];
  /** Resources that were not usable, with why (shown to the user as a count, details in the console). */
  skipped: { id?: string; why: string }[];
}

function toStudy(r: VbmdResult): VbmdStudy | { skip: string } {
  if (!r.observationId) return { skip: 'no id' };
  const device = deviceText(r);
  return {
    observationId: r.observationId,
    effective: r.effective,
    effectiveMs: r.effectiveMs,
    vbmdMgCm3: r.vbmdMgCm3,
    unit: 'mg/cm3',
    category: r.category,
    basis: r.basis,
    basisText: r.basisText,
    levels: r.levels,
    summaryLevels: r.summaryLevels,
    ...(r.imagingStudy ? { imagingStudy: r.imagingStudy } : {}),
    ...(device ? { device } : {}),
    notes: r.notes,
    ...(r.calibration ? { calibration: calibrationText(r.calibration) } : {}),
    uncalibrated: r.uncalibrated,
    contrastEnhanced: r.contrastEnhanced === true,
    status: r.status,
  };
}

export function parseVbmdObservation(raw: unknown): VbmdStudy | { skip: string } {
  const r = readVbmdResult(raw);
  return r.ok ? toStudy(r.result) : { skip: SKIP_WORDS[r.reason] };
}

/** The current results among the resources (a superseded result of the same study is skipped). */
export function parseVbmdObservations(resources: readonly unknown[]): ParseResult<VbmdStudy> {
  const read = readVbmdResults(resources);
  const items: VbmdStudy[] = [];
  const skipped: ParseResult<VbmdStudy>['skipped'] = read.skipped.map((s) => ({ ...(s.id ? { id: s.id } : {}), why: SKIP_WORDS[s.reason] }));
  for (const r of read.results) {
    const s = toStudy(r);
    if ('skip' in s) skipped.push({ why: s.skip });
    else items.push(s);
  }
  return { items, skipped };
}

/** The most recent usable osteoporosis RiskAssessment (by occurrence date), or null. */
export function latestRisk(resources: readonly unknown[]): RiskSummary | null {
  const r = readOsteoporosisRisks(resources)[0];
  if (!r || !r.id) return null;
  return {
    id: r.id,
    ...(r.occurrenceMs !== null ? { occurrence: new Date(r.occurrenceMs).toISOString() } : {}),
    outcome: 'Osteoporosis',
    ...(r.probability !== undefined ? { probability: r.probability } : {}),
    ...(r.qualitativeRiskDisplay || r.qualitativeRisk ? { qualitativeRisk: r.qualitativeRiskDisplay ?? r.qualitativeRisk } : {}),
    ...(r.basisObservationId ? { basis: `Observation/${r.basisObservationId}` } : {}),
    status: r.status,
  };
}

const concept = z.object({ coding: z.array(z.object({ system: z.string().optional(), code: z.string().optional(), display: z.string().optional() })).optional(), text: z.string().optional() });
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

const imagingStudy = z.object({
  resourceType: z.literal('ImagingStudy'),
  identifier: z.array(z.object({ system: z.string().optional(), value: z.string().optional() })).optional(),
});

/** The DICOM Study Instance UID of an ImagingStudy (identifier system urn:dicom:uid, value urn:oid:<uid>). */
export function parseImagingStudyUid(raw: unknown): string | null {
  const s = imagingStudy.safeParse(raw);
  if (!s.success) return null;
  const v = s.data.identifier?.find((i) => i.system === 'urn:dicom:uid' && i.value)?.value?.replace(/^urn:oid:/, '');
  return v && /^[0-9.]{1,64}$/.test(v) ? v : null;
}
