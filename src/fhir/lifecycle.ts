import type { VbmdReport } from '../bmd/report.js';
import { algorithmKey, analysisKey } from './identifiers.js';
import type { ResultStatus } from './observation.js';
import { resultStatus } from './observation.js';

/**
 * The lifecycle of a study's result set, following FHIR R4's own status semantics: a result is one resource
 * that changes over time, and its history keeps every earlier version.
 *  - Observation/DiagnosticReport/RiskAssessment `amended` = "modified subsequent to being final", `corrected`
 *    = "modified to correct an error in the result" (a subset of amended). So a re-analysis updates the same
 *    resources (same ids) to a new version: `corrected` when the same algorithm recomputed it (a corrected
 *    calibration, another series of the study), `amended` when a new engine or model version did. A result
 *    that was only preliminary (uncalibrated) simply becomes final (or stays preliminary).
 *  - `entered-in-error` is not used: the earlier result was not entered in error, it was superseded. The old
 *    content stays readable as the earlier version (`_history`), linked from the new analysis' Provenance
 *    (entity role `revision`), and the DiagnosticReport lists the analysis keys it superseded.
 * There is never a second current result for a study, so no reader has to guess which one counts.
 */
export interface ExistingResource {
  resourceType: 'DiagnosticReport' | 'Observation' | 'RiskAssessment';
  id: string;
  versionId?: string;
  status: string;
  /** `${base}/${type}/${id}`: the entry fullUrl of an update. */
  fullUrl: string;
}

export interface ExistingSet {
  diagnosticReport: ExistingResource & {
    subject?: string;
    /** From the vbmd-analysis extension; undefined for a set another writer made. */
    analysisKey?: string;
    /** `engine@v|model@v#sha` of the analysis it holds (same form as identifiers.ts algorithmKey). */
    algorithm?: string;
    superseded: string[];
  };
  observation?: ExistingResource;
  riskAssessment?: ExistingResource;
  /** Fracture findings by level. */
  fractures: Map<string, ExistingResource>;
  /** The device the current summary Observation names, `Device/<id>`. */
  device?: string;
}

export type WriteDecision =
  | { kind: 'create'; status: ResultStatus }
  /** This analysis is the current one: nothing to write (a retry or duplicate delivery). */
  | { kind: 'unchanged' }
  /** A later analysis already superseded this one: writing it would resurrect an outdated result. */
  | { kind: 'stale'; current: string | undefined }
  | { kind: 'supersede'; status: ResultStatus; superseded: string[]; previous: string | undefined };

const FINAL_LIKE = new Set(['final', 'amended', 'corrected', 'appended']);

/** Status of the new version of a result set whose previous status was `previous`. */
export function nextStatus(report: VbmdReport, previous: string | undefined, sameAlgorithm: boolean): ResultStatus {
  if (!previous || !FINAL_LIKE.has(previous)) return resultStatus(report);
  return sameAlgorithm ? 'corrected' : 'amended';
}

export function decideWrite(report: VbmdReport, existing: ExistingSet | undefined): WriteDecision {
  if (!existing) return { kind: 'create', status: resultStatus(report) };
  const ours = analysisKey(report);
  const dr = existing.diagnosticReport;
  if (dr.analysisKey === ours) return { kind: 'unchanged' };
  if (dr.superseded.includes(ours)) return { kind: 'stale', current: dr.analysisKey };
  const superseded = [...dr.superseded, ...(dr.analysisKey ? [dr.analysisKey] : [])];
  return {
    kind: 'supersede',
    status: nextStatus(report, dr.status, dr.algorithm === algorithmKey(report)),
    superseded,
    previous: dr.analysisKey,
  };
}
