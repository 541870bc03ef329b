import { VBMD_BASIS_CODES, UCUM_SYSTEM, CALIBRATION_METHOD_CODES } from '../../fhir/codes.js';
import { NOT_A_RESULT, RESULT_STATUSES, TO_MG_PER_CM3, UNIT_TEXT } from '../../fhir/result-reader.js';
import type { TherapyMatch, TherapyTables } from '../therapy-value-set.js';
import { sqlLookup, sqlString } from './sql-literals.js';

/**
 * The rules of src/fhir/result-reader.ts (the one reader of vBMD results) and resources.ts (bone therapy)
 * in DuckDB SQL, over the flattened rows of flatten.ts. Tables, status sets and unit factors are imported
 * from the reader, not copied; the rest mirrors its code, and test/population/engines-agree.test.ts holds
 * both engines to the same rows. Query parameters are SQL variables (SET VARIABLE), so the standalone script
 * (cohort.duckdb.sql) and the engine run the same text: since_ms / until_ms (window, until exclusive),
 * as_of_ms (reference time for active therapy).
 */

/** FHIR date/dateTime -> epoch ms as fhirDateTimeToMs does: partial dates are UTC starts, a time needs a
 * zone (one without is refused, not read in some local zone), seconds are optional. */
export function fhirDateTimeMsSql(expr: string): string {
  const pattern = '\\d{4}(-\\d{2}(-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2}))?)?)?';
  // Once the pattern holds, the form follows from the length and the 17th character (':' when seconds are
  // given); DuckDB's cast wants seconds, so a time without them gets ':00'.
  const normalized = `CASE length(${expr}) WHEN 4 THEN ${expr} || '-01-01 00:00:00+00' WHEN 7 THEN ${expr} || '-01 00:00:00+00'
      WHEN 10 THEN ${expr} || ' 00:00:00+00' ELSE (CASE WHEN substr(${expr}, 17, 1) = ':' THEN ${expr} ELSE substr(${expr}, 1, 16) || ':00' || substr(${expr}, 17) END) END`;
  return `CASE WHEN regexp_full_match(${expr}, '${pattern}') THEN epoch_ms(TRY_CAST(${normalized} AS TIMESTAMPTZ)) END`;
}

const factors = (table: Readonly<Record<string, number>>) => new Map(Object.entries(table));
/** toMgCm3: a UCUM code (system UCUM or absent) or, without a code or system, a display unit; else NULL. */
const UNIT_FACTOR = `CASE WHEN unit IS NOT NULL THEN (CASE WHEN unit_system IS NULL OR unit_system = ${sqlString(UCUM_SYSTEM)} THEN ${sqlLookup('unit', factors(TO_MG_PER_CM3))} END)
    WHEN unit_system IS NULL AND unit_text IS NOT NULL THEN ${sqlLookup('unit_text', factors(UNIT_TEXT))} END`;
const BASIS = sqlLookup('basis', new Map(Object.entries(VBMD_BASIS_CODES).map(([name, c]) => [c.code, name])));
/** No value is indeterminate: a dataAbsentReason, or no finite number (as toMgCm3 answers null). */
const NO_VALUE = '(data_absent OR value IS NULL OR NOT isfinite(value))';

/**
 * The reader's reading of each flattened row (flatten.ts), independent of the query: vbmd_mg_cm3 (mg/cm3,
 * NULL when indeterminate), effective (as written) and effective_ms, issued_ms, basis, study_uid (without
 * urn:oid:), uncalibrated, and `reason`: NULL for a result the cohort counts, else why not, in the reader's
 * order; rows that are not vBMD results carry their kind as reason ('medication' rows are read by
 * therapyRecordSql). Two keys save every query a pass over text: study_key, a 64-bit hash of (patient,
 * study) that finds re-analyses, and month, as written in the effective time (the local date of the scan;
 * a year alone is its January). This is what a Parquet stage stores: each query reads numbers, not JSON.
 */
export function readingSql(flat: string): string {
  return `WITH o AS (
  SELECT *, coalesce(effective_date_time, effective_instant, effective_period_start) AS effective, ${UNIT_FACTOR} AS factor FROM (${flat})
), t AS (
  SELECT * REPLACE (nullif(CASE WHEN starts_with(study_uid, 'urn:oid:') THEN substr(study_uid, 9) ELSE study_uid END, '') AS study_uid),
    ${fhirDateTimeMsSql('effective')} AS effective_ms
  FROM o
)
SELECT kind, id, patient_id, status, effective, effective_ms, ${fhirDateTimeMsSql('issued')} AS issued_ms,
  CASE WHEN NOT ${NO_VALUE} THEN floor(value * factor * 1e6 + 0.5) / 1e6 END AS vbmd_mg_cm3,
  ${BASIS} AS basis,
  study_uid,
  CASE WHEN study_uid IS NOT NULL THEN hash(patient_id, study_uid) END AS study_key,
  CASE WHEN length(effective) >= 7 THEN substr(effective, 1, 7) ELSE strftime(make_timestamp(effective_ms * 1000), '%Y-%m') END AS month,
  -- Without the structured calibration (an older writer), 'preliminary' was how vbmd said uncalibrated.
  CASE WHEN calibration_method IS NOT NULL THEN NOT (calibration_traceable IS TRUE AND calibration_method <> ${sqlString(CALIBRATION_METHOD_CODES.nominal.code)})
       ELSE status = 'preliminary' END AS uncalibrated,
  CASE WHEN kind <> 'vbmd' THEN kind
       WHEN status = 'entered-in-error' THEN 'entered-in-error'
       WHEN status IN (${[...NOT_A_RESULT].map(sqlString).join(', ')}) THEN 'not-a-result'
       WHEN status NOT IN (${[...RESULT_STATUSES].map(sqlString).join(', ')}) THEN 'invalid'
       WHEN patient_id IS NULL THEN 'no-subject'
       WHEN effective_ms IS NULL THEN 'no-effective-time'
       WHEN NOT ${NO_VALUE} AND factor IS NULL THEN 'unit'
  END AS reason,
  resource_type, period_end, medication_text, medication_coding, medication_unresolved
FROM t`;
}

/** Columns of readingSql, in order (a stage from another version of these rules is refused). */
export const READING_COLUMNS = [
  'kind', 'id', 'patient_id', 'status', 'effective', 'effective_ms', 'issued_ms', 'vbmd_mg_cm3', 'basis', 'study_uid', 'study_key', 'month', 'uncalibrated', 'reason',
  'resource_type', 'period_end', 'medication_text', 'medication_coding', 'medication_unresolved',
] as const;

/** `scan`: the reading of one stage file, with a row id and the query's window (since_ms, until_ms). */
export function scanSql(readingSource: string): string {
  return `SELECT * REPLACE (CASE WHEN reason IS NULL AND (effective_ms < getvariable('since_ms') OR effective_ms >= getvariable('until_ms')) THEN 'outside-window' ELSE reason END AS reason),
  file_row_number AS row_id
FROM ${readingSource}`;
}

/**
 * The scans that do not count because a later result of the same study does (result-reader.ts supersedes):
 * of two results of the same study of the same patient, the one issued later counts; at the same issued time
 * the lower value (the cautious reading); the last tie-breaks (time, id) only make the choice independent of
 * the order of the files. Re-analyses are rare: the stage lists the study keys (64-bit hashes of patient and
 * study) found more than once (`reanalysed`), and only those rows are ranked on the real keys (a hash
 * collision costs a little work, never a wrong answer; a result outside the window supersedes nothing).
 */
export const SUPERSEDED_SQL = `SELECT row_id FROM (
  SELECT row_id, row_number() OVER (PARTITION BY patient_id, study_uid
    ORDER BY issued_ms DESC NULLS LAST, vbmd_mg_cm3 ASC NULLS LAST, effective_ms, id) AS rank
  FROM scan WHERE reason IS NULL AND study_key IN (SELECT study_key FROM reanalysed)
) WHERE rank > 1`;

/** The scans the cohort counts: results, in the window, not superseded. */
export const CURRENT_SCAN_SQL = `SELECT * FROM scan WHERE reason IS NULL AND row_id NOT IN (SELECT row_id FROM superseded)`;

const matchLiteral = (m: TherapyMatch) => `{'ingredient': ${sqlString(m.ingredient)}, 'class': ${sqlString(m.class)}}`;

/** The value-set match of compileTherapyValueSet: the first coding with a listed system|code, else the first
 * coding whose display holds a listed name, else the concept text; names in listing order. */
export function therapyMatchSql(tables: TherapyTables, coding: string, text: string): string {
  const byCode = [...tables.byCode].map(([key, m]) => `WHEN ${sqlString(key)} THEN ${matchLiteral(m)}`);
  const byName = (expr: string) => {
    if (tables.byName.length === 0) return 'NULL';
    const arms = tables.byName.map(([needle, m]) => `WHEN contains(lower(${expr}), ${sqlString(needle)}) THEN ${matchLiteral(m)}`);
    return `CASE ${arms.join(' ')} END`;
  };
  const codeHit = byCode.length ? `CASE c.system || '|' || c.code ${byCode.join(' ')} END` : 'NULL';
  const firstOf = (perCoding: string) => `list_filter(list_transform(${coding}, lambda c: ${perCoding}), lambda x: x IS NOT NULL)[1]`;
  return `coalesce(${firstOf(codeHit)}, ${firstOf(byName('c.display'))}, ${byName(text)})`;
}

/** A period end before the reference time; a date-only end covers its whole day (resources.ts endedBefore). */
const ENDED_BEFORE = `coalesce(
  CASE WHEN contains(period_end, 'T') THEN ${fhirDateTimeMsSql('period_end')} ELSE ${fhirDateTimeMsSql('period_end')} + 86400000 - 1 END
    < getvariable('as_of_ms'), false)`;

/** One row per medication row: the matched ingredient and class, whether in force at as_of, and `reason`
 * (NULL for a bone-therapy record) in the order of resources.ts extractMedication. */
export function therapyRecordSql(tables: TherapyTables): string {
  return `SELECT patient_id, resource_type, m.ingredient, m.class AS therapy_class,
  status = 'active' AND NOT ${ENDED_BEFORE} AS active,
  CASE WHEN status IS NULL THEN 'invalid'
       WHEN status = 'entered-in-error' THEN 'entered-in-error'
       WHEN patient_id IS NULL THEN 'no-subject'
       WHEN medication_unresolved THEN 'unresolved-medication-reference'
       -- 'not-taken' records that the drug is NOT taken: never treatment.
       WHEN m IS NULL OR status = 'not-taken' THEN 'not-bone-therapy'
  END AS reason
FROM (SELECT *, ${therapyMatchSql(tables, 'medication_coding', 'medication_text')} AS m FROM scan WHERE kind = 'medication')`;
}
