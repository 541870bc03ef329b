import type { RiskAssessment } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { OSTEOPOROSIS_SNOMED, QUALITATIVE_RISK_BY_CATEGORY, RISK_METHOD_CODES } from './codes.js';
import type { AnalysisContext } from './context.js';
import { toFhirDateTime } from './datetime.js';
import { resultIdentifier } from './identifiers.js';
import { extrapolationText, formatMgCm3 } from './observation-notes.js';
import type { ResultStatus } from './observation.js';
import { resultMeta, writtenCategory } from './observation.js';
import { patientReference, serviceRequestReference } from './references.js';
import { CATEGORY_TERM } from './result-words.js';

/**
 * The model's osteoporosis-class probability for the study: the mean over the levels the summary uses, and
 * only when every one of them has a probability (a partial mean would describe different vertebrae than the
 * vBMD). Undefined when no model gave probabilities: we never invent a probability from thresholds.
 */
export function osteoporosisProbability(report: VbmdReport): number | undefined {
  const used = report.summary.levels;
  if (used.length === 0) return undefined;
  const probs: number[] = [];
  for (const lv of used) {
    const p = report.levels.find((l) => l.level === lv)?.modelClassProbabilities?.osteoporosis;
    if (p === undefined || p === null || !Number.isFinite(p)) return undefined;
    probs.push(Math.min(1, Math.max(0, p)));
  }
  return Math.round((probs.reduce((a, b) => a + b, 0) / probs.length) * 1000) / 1000;
}

export interface RiskAssessmentRefs {
  observation: string;
  device: string;
  status: ResultStatus;
}

/**
 * Osteoporosis risk from the vBMD result. Null when the summary is indeterminate: there is no basis for a
 * risk statement, and the Observation already says why.
 */
export function buildRiskAssessment(report: VbmdReport, ctx: AnalysisContext, refs: RiskAssessmentRefs): RiskAssessment | null {
  const s = report.summary;
  const category = writtenCategory(report);
  if (category === 'indeterminate' || s.vbmd === null) return null;
  const probability = osteoporosisProbability(report);
  const method = probability === undefined ? RISK_METHOD_CODES['acr-thresholds'] : RISK_METHOD_CODES['model-probability'];
  const occurrence = toFhirDateTime(report.input.acquisitionDateTime).value;
  const order = serviceRequestReference(report, ctx);
  const meta = resultMeta(ctx);
  const caveat = extrapolationText(report);
  const rationale =
    `Trabecular vBMD ${formatMgCm3(s.vbmd)} (${CATEGORY_TERM[category]}, ACR QCT thresholds)` +
    (probability !== undefined ? `; model osteoporosis-class probability ${probability} (mean over ${s.levels.join(', ')})` : '') +
    (report.input.contrast ? '; contrast-enhanced scan, vBMD may read high' : '') +
    '.';
  return {
    resourceType: 'RiskAssessment',
    meta,
    identifier: [resultIdentifier(report, 'risk-assessment')],
    ...(order ? { basedOn: order } : {}),
    status: refs.status,
    method: { coding: [{ ...method }], text: method.display },
    code: { text: 'Osteoporosis risk from opportunistic CT vBMD' },
    subject: patientReference(ctx),
    ...(occurrence ? { occurrenceDateTime: occurrence } : {}),
    performer: { reference: refs.device, type: 'Device' },
    basis: [{ reference: refs.observation, type: 'Observation' }],
    prediction: [
      {
        outcome: { coding: [{ ...OSTEOPOROSIS_SNOMED }], text: 'Osteoporosis' },
        ...(probability !== undefined ? { probabilityDecimal: probability } : {}),
        qualitativeRisk: { coding: [{ ...QUALITATIVE_RISK_BY_CATEGORY[category] }] },
        rationale,
      },
    ],
    ...(caveat ? { note: [{ text: caveat }] } : {}),
  };
}

/**
 * A re-analysis that is indeterminate leaves no basis for the earlier risk statement: the same
 * RiskAssessment is amended to say so, with no prediction (readers look for the osteoporosis prediction and
 * find none), instead of leaving the old risk current.
 */
export function buildRiskWithdrawal(report: VbmdReport, ctx: AnalysisContext, refs: RiskAssessmentRefs): RiskAssessment {
  const occurrence = toFhirDateTime(report.input.acquisitionDateTime).value;
  const order = serviceRequestReference(report, ctx);
  return {
    resourceType: 'RiskAssessment',
    meta: resultMeta(ctx),
    identifier: [resultIdentifier(report, 'risk-assessment')],
    ...(order ? { basedOn: order } : {}),
    status: refs.status,
    code: { text: 'Osteoporosis risk from opportunistic CT vBMD' },
    subject: patientReference(ctx),
    ...(occurrence ? { occurrenceDateTime: occurrence } : {}),
    performer: { reference: refs.device, type: 'Device' },
    basis: [{ reference: refs.observation, type: 'Observation' }],
    note: [{ text: 'Withdrawn by re-analysis: no vertebral level could be measured reliably, so no osteoporosis risk is stated for this CT.' }],
  };
}
