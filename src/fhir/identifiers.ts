import { createHash } from 'node:crypto';
import type { Identifier } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { VBMD_ANALYSIS_IDENTIFIER_SYSTEM } from './codes.js';

/**
 * Stable identities that make every write idempotent. One analysis = (StudyInstanceUID, SeriesInstanceUID,
 * the version of what computed it). The same report written again (a retry, a re-run of the same version)
 * yields the same identifiers, so conditional creates find the earlier resources; a new model or engine
 * version yields new identifiers, so its results are added next to the old ones and nothing is deleted.
 */
export type AnalysisResourceKind = 'observation' | 'risk-assessment' | 'provenance';

/** What computed the numbers: the model when one ran (its sha256 pins the weights), else the engine. */
export function versionKey(report: VbmdReport): string {
  if (report.model) return `model:${report.model.name}@${report.model.version}#${report.model.sha256}`;
  if (report.software) return `engine:${report.software.name}@${report.software.version}`;
  return 'engine:vbmd@unknown';
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

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** The identifier value is a digest (UIDs and versions may hold characters that break `system|value`
 * search tokens); the readable parts are in the resources themselves. */
export function analysisIdentifier(report: VbmdReport, kind: AnalysisResourceKind): Identifier {
  return {
    system: VBMD_ANALYSIS_IDENTIFIER_SYSTEM,
    value: `${kind}-${digest(studyKey(report), versionKey(report)).slice(0, 40)}`,
  };
}

export function deviceIdentifier(report: VbmdReport): Identifier {
  return { system: VBMD_ANALYSIS_IDENTIFIER_SYSTEM, value: `device-${digest(versionKey(report)).slice(0, 40)}` };
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
