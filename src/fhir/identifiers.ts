import { createHash } from 'node:crypto';
import type { Identifier } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { VBMD_ANALYSIS_IDENTIFIER_SYSTEM } from './codes.js';

/**
 * Stable identities that make every write idempotent and give each study one result set.
 *  - The result set is per study (`resultKey`): its DiagnosticReport, summary Observation, RiskAssessment and
 *    fracture Observations keep their identifiers (and their server ids) across re-analyses, so a
 *    re-analysis is a new version of the same resources (status amended/corrected), never a parallel set.
 *  - The analysis (`analysisKey`) is what was computed: study, series, the version of what computed it, and the
 *    calibration. The same report written again (a retry, a duplicate job) has the same key and writes
 *    nothing; a new model version or a corrected calibration has a new key and supersedes.
 */
export type ResultResourceKind = 'diagnostic-report' | 'observation' | 'risk-assessment' | `fracture-${string}`;

/** What computed the numbers: the model when one ran (its sha256 pins the weights), else the engine. */
export function versionKey(report: VbmdReport): string {
  if (report.model) return `model:${report.model.name}@${report.model.version}#${report.model.sha256}`;
  if (report.software) return `engine:${report.software.name}@${report.software.version}`;
  return 'engine:vbmd@unknown';
}

/** The algorithm as a whole (engine and model): a re-analysis by the same algorithm is a correction. */
export function algorithmKey(report: VbmdReport): string {
  const e = report.software ?? { name: 'vbmd', version: 'unknown' };
  return `${e.name}@${e.version}|${report.model ? `${report.model.name}@${report.model.version}#${report.model.sha256}` : 'no-model'}`;
}

/**
 * Identity of the imaged data. DICOM inputs have UIDs; NIfTI and phantom inputs have none, so the key falls
 * back to what the report says about the acquisition (patient, time, geometry) - stable for the same file,
 * but two different files with identical metadata would collide; callers with such inputs should pass
 * StudyInstanceUIDs.
 */
export function studyKey(report: VbmdReport): string {
  const i = report.input;
  if (i.studyInstanceUid) return `dicom:${i.studyInstanceUid}:${i.seriesInstanceUid ?? ''}`;
  return `${i.kind}:${i.patientId ?? ''}:${i.acquisitionDateTime ?? ''}:${i.dims.join('x')}:${i.spacingMm.join('x')}`;
}

/** One result set per study: a re-analysis of another series of the same study replaces it too. */
export function resultKey(report: VbmdReport): string {
  const uid = report.input.studyInstanceUid;
  return uid ? `dicom-study:${uid}` : studyKey(report);
}

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** Calibration to 1e-6: a corrected calibration is a new analysis, float noise in the last digit is not. */
function calibrationKey(report: VbmdReport): string {
  const c = report.calibration;
  return `${c.method}:${c.slope.toFixed(6)}:${c.intercept.toFixed(6)}:${c.uncalibrated ? 'u' : 'c'}`;
}

/** Hex digest naming one analysis (stored in the resources and in the Provenance tag). */
export function analysisKey(report: VbmdReport): string {
  return digest(studyKey(report), versionKey(report), calibrationKey(report)).slice(0, 40);
}

/** The identifier value is a digest (UIDs and versions may hold characters that break `system|value`
 * search tokens); the readable parts are in the resources themselves. */
export function resultIdentifier(report: VbmdReport, kind: ResultResourceKind): Identifier {
  const uid = report.input.studyInstanceUid;
  if (uid) return studyResultIdentifier(uid, kind);
  return { system: VBMD_ANALYSIS_IDENTIFIER_SYSTEM, value: `${kind}-${digest(resultKey(report)).slice(0, 40)}` };
}

/** The same identifier from the StudyInstanceUID alone: whether a study has results can be asked before
 * analysing it (the archive backfill skips studies already analysed). */
export function studyResultIdentifier(studyInstanceUid: string, kind: ResultResourceKind): Identifier {
  return { system: VBMD_ANALYSIS_IDENTIFIER_SYSTEM, value: `${kind}-${digest(`dicom-study:${studyInstanceUid}`).slice(0, 40)}` };
}

/** Provenance has no `identifier` in R4: one Provenance per analysis, keyed by a `meta.tag`. */
export function provenanceKey(report: VbmdReport): Identifier {
  return { system: VBMD_ANALYSIS_IDENTIFIER_SYSTEM, value: `provenance-${analysisKey(report)}` };
}

export function deviceIdentifier(report: VbmdReport): Identifier {
  return { system: VBMD_ANALYSIS_IDENTIFIER_SYSTEM, value: `device-${digest(versionKey(report)).slice(0, 40)}` };
}

/** The model card DocumentReference: one per card content (its SHA-256). */
export function modelCardIdentifier(sha256Hex: string): Identifier {
  return { system: VBMD_ANALYSIS_IDENTIFIER_SYSTEM, value: `model-card-${sha256Hex.slice(0, 40)}` };
}

/** The `If-None-Exist` query that finds the resource with this identifier (system is a plain URL and the
 * value hex, so nothing needs escaping). */
export function identifierQuery(id: Identifier): string {
  return `identifier=${id.system}|${id.value}`;
}

/** Provenance has no `identifier` in R4: the same identity goes in `meta.tag` and is found with `_tag`. */
export function tagQuery(id: Identifier): string {
  return `_tag=${id.system}|${id.value}`;
}

/** Deterministic `urn:uuid` for a Bundle entry (RFC 4122 layout, version nibble 5-like, from a digest):
 * the same analysis gives a byte-identical Bundle, which makes retries and files easy to compare. */
export function entryFullUrl(id: Identifier): string {
  const h = digest(id.system ?? '', id.value ?? '');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
