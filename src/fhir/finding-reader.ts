import { z } from 'zod';
import { GENANT_GRADE_CODES, OSTEOPOROSIS_SNOMED, RISK_PROBABILITY_SYSTEM, VERTEBRAL_COMPRESSION_FRACTURE_SNOMED } from './codes.js';
import { fhirConcept as concept, fhirDateTimeToMs, fhirReference as reference, patientKey, RESULT_STATUSES } from './result-reader.js';

/**
 * Readers of the other resources of a result set, next to result-reader.ts and by the same rules (status,
 * time, one current per study): the vertebral fracture findings (fracture.ts) and the osteoporosis
 * RiskAssessment (risk-assessment.ts). Browser-safe.
 */

const fractureSchema = z.object({
  resourceType: z.literal('Observation'),
  id: z.string().optional(),
  status: z.string(),
  code: concept,
  subject: reference.optional(),
  effectiveDateTime: z.string().optional(),
  issued: z.string().optional(),
  bodySite: concept.optional(),
  valueCodeableConcept: concept.optional(),
  partOf: z.array(reference).optional(),
});

export interface FractureFinding {
  observationId: string | null;
  patient: string | null;
  level: string;
  grade: 1 | 2 | 3;
  effectiveMs: number | null;
  studyUid: string | null;
}

const GRADE_BY_CODE = new Map<string, 0 | 1 | 2 | 3>(Object.entries(GENANT_GRADE_CODES).map(([g, c]) => [c.code, Number(g) as 0 | 1 | 2 | 3]));

/** Current fracture findings of grade 1-3, one per (study, level): a later-issued finding of the same study
 * and level replaces an earlier one; grade 0 (amended away by a re-analysis) and withdrawn ones are no finding. */
export function readFractureFindings(resources: readonly unknown[]): FractureFinding[] {
  const best = new Map<string, { f: FractureFinding | null; issued: number }>();
  for (const raw of resources) {
    const p = fractureSchema.safeParse(raw);
    if (!p.success) continue;
    const o = p.data;
    if (!o.code.coding?.some((c) => c.system === VERTEBRAL_COMPRESSION_FRACTURE_SNOMED.system && c.code === VERTEBRAL_COMPRESSION_FRACTURE_SNOMED.code)) continue;
    if (!RESULT_STATUSES.has(o.status)) continue;
    const level = o.bodySite?.text;
    if (!level) continue;
    const gradeCode = o.valueCodeableConcept?.coding?.find((c) => c.code && GRADE_BY_CODE.has(c.code))?.code;
    const grade = gradeCode ? GRADE_BY_CODE.get(gradeCode) : undefined;
    const studyUid = o.partOf?.find((r) => r.identifier?.value)?.identifier?.value?.replace(/^urn:oid:/, '') ?? null;
    const patient = patientKey(o.subject);
    const key = `${patient}\u0000${studyUid ?? o.id}\u0000${level}`;
    const issued = (o.issued && fhirDateTimeToMs(o.issued)) || 0;
    const prev = best.get(key);
    if (prev && prev.issued > issued) continue;
    const f: FractureFinding | null =
      grade === undefined || grade === 0
        ? null
        : { observationId: o.id ?? null, patient, level, grade, effectiveMs: o.effectiveDateTime ? fhirDateTimeToMs(o.effectiveDateTime) : null, studyUid };
    best.set(key, { f, issued });
  }
  return [...best.values()].map((v) => v.f).filter((f): f is FractureFinding => f !== null);
}

const riskSchema = z.object({
  resourceType: z.literal('RiskAssessment'),
  id: z.string().optional(),
  status: z.string(),
  occurrenceDateTime: z.string().optional(),
  basis: z.array(reference).optional(),
  prediction: z.array(z.object({ outcome: concept.optional(), probabilityDecimal: z.number().optional(), qualitativeRisk: concept.optional() })).optional(),
});

export interface OsteoporosisRisk {
  id: string | null;
  status: string;
  occurrenceMs: number | null;
  /** risk-probability code (low, moderate, high, ...). */
  qualitativeRisk?: string;
  qualitativeRiskDisplay?: string;
  probability?: number;
  /** Id of the Observation it rests on. */
  basisObservationId?: string;
}

/** Osteoporosis RiskAssessments with a prediction (a withdrawn one has none), newest occurrence first. */
export function readOsteoporosisRisks(resources: readonly unknown[]): OsteoporosisRisk[] {
  const out: OsteoporosisRisk[] = [];
  for (const raw of resources) {
    const p = riskSchema.safeParse(raw);
    if (!p.success || !RESULT_STATUSES.has(p.data.status)) continue;
    const ra = p.data;
    const pred = (ra.prediction ?? []).find((x) =>
      (x.outcome?.coding ?? []).some((c) => c.system === OSTEOPOROSIS_SNOMED.system && c.code === OSTEOPOROSIS_SNOMED.code),
    );
    if (!pred) continue;
    const q = pred.qualitativeRisk?.coding?.find((c) => c.system === RISK_PROBABILITY_SYSTEM);
    const basis = ra.basis?.map((b) => /(?:^|\/)Observation\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(b.reference ?? '')?.[1]).find(Boolean);
    out.push({
      id: ra.id ?? null,
      status: ra.status,
      occurrenceMs: ra.occurrenceDateTime ? fhirDateTimeToMs(ra.occurrenceDateTime) : null,
      ...(q?.code ? { qualitativeRisk: q.code } : {}),
      ...(q?.display || pred.qualitativeRisk?.text ? { qualitativeRiskDisplay: q?.display ?? pred.qualitativeRisk?.text } : {}),
      ...(typeof pred.probabilityDecimal === 'number' ? { probability: pred.probabilityDecimal } : {}),
      ...(basis ? { basisObservationId: basis } : {}),
    });
  }
  return out.sort((a, b) => (b.occurrenceMs ?? -Infinity) - (a.occurrenceMs ?? -Infinity));
}
