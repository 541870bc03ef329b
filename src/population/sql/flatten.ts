import { ANALYSIS_EXT, DICOM_UID_SYSTEM, VBMD_ANALYSIS_EXTENSION, VBMD_CODE_SYSTEM, VBMD_SUMMARY_CODE } from '../../fhir/codes.js';
import { sqlString, sqlStringList } from './sql-literals.js';

/**
 * The first step of the DuckDB cohort: FHIR resources (NDJSON lines) flattened to the columns of the
 * SQL-on-FHIR ViewDefinitions in ../view-definitions/ that the cohort reads (vbmd_observation, and one
 * medication row per MedicationRequest/MedicationStatement whose codings stay a list), under the same names
 * (test/population/duckdb-engine.test.ts checks them against @medplum/core's evaluator of those
 * ViewDefinitions). No result rule is applied here: cohort-rules.ts reads these rows.
 *
 * Columns are declared, never inferred: inference reads the whole file first (40 s of a 75 s run on 1M
 * Observations) and a field absent from every record must still exist. Only the fields the readers use are
 * declared; the JSON parser skips the rest (per-level components, notes, narrative).
 */
const CODING = 'STRUCT(system VARCHAR, code VARCHAR, display VARCHAR)';
const CONCEPT = `STRUCT(coding ${CODING}[], text VARCHAR)`;
const REFERENCE = 'STRUCT(reference VARCHAR, identifier STRUCT(system VARCHAR, value VARCHAR))';

/** The union of the fields of the three resource types the cohort reads (one pass over every file). */
export const NDJSON_COLUMNS: Readonly<Record<string, string>> = {
  resourceType: 'VARCHAR',
  id: 'VARCHAR',
  status: 'VARCHAR',
  code: `STRUCT(coding STRUCT(system VARCHAR, code VARCHAR)[])`,
  subject: REFERENCE,
  effectiveDateTime: 'VARCHAR',
  effectiveInstant: 'VARCHAR',
  effectivePeriod: 'STRUCT(start VARCHAR, "end" VARCHAR)',
  issued: 'VARCHAR',
  valueQuantity: 'STRUCT(value DOUBLE, unit VARCHAR, system VARCHAR, code VARCHAR)',
  dataAbsentReason: 'STRUCT(text VARCHAR)',
  method: `STRUCT(coding STRUCT(system VARCHAR, code VARCHAR)[])`,
  partOf: `${REFERENCE}[]`,
  derivedFrom: `${REFERENCE}[]`,
  extension: 'STRUCT(url VARCHAR, extension STRUCT(url VARCHAR, "valueCoding" STRUCT(code VARCHAR), "valueBoolean" BOOLEAN)[])[]',
  medicationCodeableConcept: CONCEPT,
  medicationReference: 'STRUCT(reference VARCHAR)',
  // Contained resources may be of any type (a contained Questionnaire's `code` is a list): kept as JSON and
  // parsed only for a medication that points at one.
  contained: 'JSON',
  dispenseRequest: 'STRUCT("validityPeriod" STRUCT("end" VARCHAR))',
};

/** The NDJSON files as rows of the declared columns (no files: no rows, same columns). */
export function readNdjsonSql(files: readonly string[]): string {
  if (files.length === 0) return `(SELECT ${Object.entries(NDJSON_COLUMNS).map(([name, type]) => `NULL::${type} AS "${name}"`).join(', ')} WHERE false)`;
  const columns = Object.entries(NDJSON_COLUMNS)
    .map(([name, type]) => `"${name}": ${sqlString(type)}`)
    .join(', ');
  return `read_json(${sqlStringList(files)}, format = 'newline_delimited', columns = {${columns}})`;
}

/** The reader's patient key (src/fhir/result-reader.ts patientKey): the id of `Patient/<id>` (any base,
 * any history), else the whole reference, else `identifier:system|value`. */
export function patientKeySql(ref: string): string {
  const reference = `nullif(${ref}.reference, '')`;
  const id = `nullif(regexp_extract(${reference}, '(?:^|/)Patient/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?$', 1), '')`;
  const ident = `'identifier:' || coalesce(${ref}.identifier.system, '') || '|' || ${ref}.identifier.value`;
  return `CASE WHEN ${reference} IS NOT NULL THEN coalesce(${id}, ${reference}) WHEN nullif(${ref}.identifier.value, '') IS NOT NULL THEN ${ident} END`;
}

const hasSummaryCode = `list_contains(code.coding, {'system': ${sqlString(VBMD_SUMMARY_CODE.system)}, 'code': ${sqlString(VBMD_SUMMARY_CODE.code)}})`;

/** What each resource is to the cohort, before any result rule. */
const KIND = `CASE
  WHEN "resourceType" = 'Observation' AND (status IS NULL OR code IS NULL) THEN 'invalid'
  WHEN "resourceType" = 'Observation' AND ${hasSummaryCode} THEN 'vbmd'
  WHEN "resourceType" = 'Observation' THEN 'not-vbmd'
  WHEN "resourceType" IN ('MedicationRequest', 'MedicationStatement') THEN 'medication'
  ELSE 'other-resource-type' END`;

const analysis = `list_filter(extension, lambda e: e.url = ${sqlString(VBMD_ANALYSIS_EXTENSION)})[1].extension`;
const subExtension = (url: string) => `list_filter(${analysis}, lambda s: s.url = ${sqlString(url)})[1]`;
const studyRef = `list_filter(list_concat(coalesce("partOf", []), coalesce("derivedFrom", [])), lambda r: r.identifier.system = ${sqlString(DICOM_UID_SYSTEM)} AND r.identifier.value <> '')[1]`;

/** vbmd_observation columns (view-definitions/vbmd-observation.json), NULL on rows of other kinds. */
const OBSERVATION_COLUMNS: Readonly<Record<string, string>> = {
  effective_date_time: '"effectiveDateTime"',
  effective_instant: '"effectiveInstant"',
  effective_period_start: '"effectivePeriod".start',
  value: '"valueQuantity".value',
  unit: '"valueQuantity".code',
  unit_system: '"valueQuantity".system',
  unit_text: '"valueQuantity".unit',
  basis: `list_filter(method.coding, lambda c: c.system = ${sqlString(VBMD_CODE_SYSTEM)})[1].code`,
  study_uid: `${studyRef}.identifier.value`,
  data_absent: '"dataAbsentReason" IS NOT NULL',
  issued: 'issued',
  calibration_method: `${subExtension(ANALYSIS_EXT.calibrationMethod)}."valueCoding".code`,
  calibration_traceable: `${subExtension(ANALYSIS_EXT.calibrationTraceable)}."valueBoolean"`,
};

const CONCEPT_JSON = JSON.stringify({ coding: [{ system: 'VARCHAR', code: 'VARCHAR', display: 'VARCHAR' }], text: 'VARCHAR' });
/** The Medication a `#id` reference names among the contained resources (FHIR R4 2.4.0.2 contained
 * resources: a local reference starts with #). */
const containedMedication = `list_filter(json_extract(contained, '$[*]'), lambda c: json_extract_string(c, '$.resourceType') = 'Medication' AND json_extract_string(c, '$.id') = substr("medicationReference".reference, 2))[1]`;
const containedCode = `json_transform(${containedMedication} -> '$.code', ${sqlString(CONCEPT_JSON)})`;
/** The medication concept: inline, or the contained Medication's code; NULL for a reference elsewhere. */
const medicationConcept = `CASE WHEN "medicationCodeableConcept" IS NOT NULL THEN "medicationCodeableConcept"
  WHEN starts_with("medicationReference".reference, '#') THEN ${containedCode} END`;

/** Medication rows (view-definitions/medication-*.json, codings kept as a list). */
const MEDICATION_COLUMNS: Readonly<Record<string, string>> = {
  period_end: `CASE "resourceType" WHEN 'MedicationRequest' THEN "dispenseRequest"."validityPeriod"."end" ELSE "effectivePeriod"."end" END`,
  medication_text: 'concept.text',
  medication_coding: 'concept.coding',
  medication_reference: '"medicationReference".reference',
  // A reference the cohort cannot follow (a separate Medication resource, or a #id not among contained).
  medication_unresolved: `"medicationCodeableConcept" IS NULL AND "medicationReference" IS NOT NULL AND concept IS NULL`,
};

export const FLAT_OBSERVATION_COLUMNS = ['id', 'patient_id', 'status', ...Object.keys(OBSERVATION_COLUMNS)] as const;
export const FLAT_MEDICATION_COLUMNS = ['resource_type', 'id', 'patient_id', 'status', ...Object.keys(MEDICATION_COLUMNS)] as const;

const when = (flag: string, columns: Readonly<Record<string, string>>) => Object.entries(columns).map(([name, expr]) => `CASE WHEN ${flag} THEN ${expr} END AS ${name}`);

/**
 * One row per resource read: `kind` (vbmd, medication, not-vbmd, invalid, other-resource-type) and the
 * flattened columns of its kind. Rows of the other kinds keep only `kind` (the rest is NULL and costs next
 * to nothing in a column store), so the counts of what was read come from the same single pass.
 */
export function flattenSql(source: string): string {
  return `SELECT kind, "resourceType" AS resource_type,
  ${when('is_vbmd OR is_medication', { id: 'id', patient_id: patientKeySql('subject'), status: 'status' }).join(',\n  ')},
  ${[...when('is_vbmd', OBSERVATION_COLUMNS), ...when('is_medication', MEDICATION_COLUMNS)].join(',\n  ')}
FROM (
  SELECT *, kind = 'vbmd' AS is_vbmd, kind = 'medication' AS is_medication,
    CASE WHEN kind = 'medication' THEN ${medicationConcept} END AS concept
  FROM (SELECT *, ${KIND} AS kind FROM ${source})
)`;
}
