import { LSC_PCT } from '../../trend/significant-change.js';
import type { ParsedCohortQuery } from '../query.js';
import { MIN_TREND_SCANS, MIN_TREND_SPAN_YEARS, MS_PER_YEAR, RATE_WINDOW_YEARS } from '../trend.js';
import { sqlNumber, sqlString } from './sql-literals.js';

/**
 * Per-patient rows of the DuckDB cohort, the same definitions as aggregate.ts (see README "What the numbers
 * mean"), over current_scan (cohort-rules.ts) and therapy_record. All of it is GROUP BY / window work that
 * DuckDB spills to its temporary folder when it passes the memory limit: the number of patients has no
 * in-memory ceiling (a JS Map stops at 2^24).
 */

/** ACR thresholds exactly as categoryForVbmd (src/bmd/report.ts): > 120 normal, 80-120 osteopenia, < 80
 * osteoporosis; the engines-agree test runs the boundary values through both. */
export const categorySql = (v: string) =>
  `CASE WHEN ${v} IS NULL OR NOT isfinite(${v}) THEN 'indeterminate' WHEN ${v} > 120 THEN 'normal' WHEN ${v} >= 80 THEN 'osteopenia' ELSE 'osteoporosis' END`;

/**
 * The ordering "time, then value, then row" as one HUGEINT, because DuckDB spills a GROUP BY only when every
 * aggregate state has a fixed size: arg_max with a (time, value, row) tuple as key held 17M patients in memory
 * and failed at 512 MB; the same with this key did not. Digits: epoch ms (FHIR years 0001-9999 fit) x 1e23,
 * the value in micrograms/cm3 (the reader rounds to 1e-6 mg/cm3) clamped to +-50,000 mg/cm3 x 1e12, row < 1e12.
 * `valueOrder` 'desc' puts lower values later (so arg_max picks the lower value at a tie), 'asc' earlier.
 */
function orderKeySql(valueOrder: 'asc' | 'desc'): string {
  const micro = 'least(greatest(round(vbmd_mg_cm3 * 1000000), -50000000000), 49999999999)';
  const value = valueOrder === 'asc' ? `(${micro} + 50000000000)` : `(49999999999 - ${micro})`;
  const row = valueOrder === 'asc' ? 'row_id' : '(999999999999 - row_id)';
  return `effective_ms::HUGEINT * 100000000000000000000000 + ${value}::HUGEINT * 1000000000000 + ${row}`;
}

/**
 * Latest measured scan (newest, ties: the lower value), and over the rate window - the measured scans of the
 * RATE_WINDOW_YEARS up to the latest (trend.ts, src/trend/rate-of-change.ts: the card's and the app's rate) - the
 * first scan (oldest, ties: the lower value), the least-squares trend (>= 2 scans over >= 0.5 year, % of the fitted
 * value at the window's first scan) and the change first -> latest against the least significant change
 * (significant-change.ts changeBetween). Time is in years from the latest scan, so the fit does not subtract epoch
 * years from each other. Numbers only: the latest scan's text (effective as written, basis, status, study, id) is
 * joined back by latest_row for the rows a query returns (ROWS_SQL), which costs a fraction of carrying it through
 * the aggregation for every patient. The last tie-break (row) only makes an exact tie deterministic.
 */
export const PATIENT_SQL = `WITH s AS (
  SELECT patient_id, row_id, effective_ms, vbmd_mg_cm3, ${orderKeySql('desc')} AS latest_key, ${orderKeySql('asc')} AS first_key
  FROM current_scan
), a AS (
  SELECT patient_id, count(*) AS scans, count(vbmd_mg_cm3) AS measured_scans,
    max(effective_ms) AS last_ms, max(effective_ms) FILTER (WHERE vbmd_mg_cm3 IS NOT NULL) AS latest_ms,
    arg_max(row_id, latest_key) FILTER (WHERE vbmd_mg_cm3 IS NOT NULL) AS latest_row,
    arg_max(vbmd_mg_cm3, latest_key) FILTER (WHERE vbmd_mg_cm3 IS NOT NULL) AS latest_v
  FROM s GROUP BY patient_id
), w AS (
  SELECT s.patient_id, s.effective_ms, s.vbmd_mg_cm3, s.first_key, (s.effective_ms - a.latest_ms) / ${sqlNumber(MS_PER_YEAR)} AS t_years
  FROM s JOIN a USING (patient_id)
  WHERE s.vbmd_mg_cm3 IS NOT NULL AND s.effective_ms >= a.latest_ms - ${sqlNumber(RATE_WINDOW_YEARS * MS_PER_YEAR)}
), r AS (
  SELECT patient_id, count(*) AS trend_scans, min(effective_ms) AS first_ms, arg_min(vbmd_mg_cm3, first_key) AS first_v,
    regr_slope(vbmd_mg_cm3, t_years) AS slope, regr_intercept(vbmd_mg_cm3, t_years) AS intercept,
    min(t_years) AS t_min, max(t_years) AS t_max
  FROM w GROUP BY patient_id
), f AS (
  SELECT a.*, r.trend_scans, r.first_ms, r.first_v, r.slope, r.t_max - r.t_min AS span_years, r.intercept + r.slope * r.t_min AS fitted_at_first,
    CASE WHEN r.trend_scans >= 2 AND r.first_v > 0 THEN ((a.latest_v - r.first_v) / r.first_v) * 100 END AS change_pct
  FROM a LEFT JOIN r USING (patient_id)
), g AS (
  SELECT *, trend_scans >= ${MIN_TREND_SCANS} AND span_years >= ${sqlNumber(MIN_TREND_SPAN_YEARS)} AND isfinite(slope) AND fitted_at_first > 0 AS has_trend FROM f
)
SELECT patient_id, latest_row, latest_v AS vbmd_mg_cm3, ${categorySql('latest_v')} AS category, scans, measured_scans,
  latest_ms IS NULL OR last_ms > latest_ms AS latest_scan_indeterminate,
  CASE WHEN has_trend THEN 100 * slope / fitted_at_first END AS trend_pct_per_year,
  CASE WHEN has_trend THEN slope END AS trend_mg_cm3_per_year, CASE WHEN has_trend THEN span_years END AS trend_span_years, trend_scans,
  change_pct, first_ms AS change_from_ms, latest_ms AS change_to_ms, latest_v - first_v AS change_mg_cm3, first_v * ${sqlNumber(LSC_PCT)} / 100 AS change_lsc_mg_cm3,
  CASE WHEN change_pct < -${sqlNumber(LSC_PCT)} THEN 'decline' WHEN change_pct > ${sqlNumber(LSC_PCT)} THEN 'gain' WHEN change_pct IS NOT NULL THEN 'within-measurement-error' END AS change_verdict
FROM g`;

/** Per patient: active classes, any inactive record ('past'), the alphabetically first active ingredient. */
export const THERAPY_SQL = `SELECT patient_id,
  bool_or(active AND therapy_class = 'antiresorptive') AS active_antiresorptive,
  bool_or(active AND therapy_class = 'anabolic') AS active_anabolic,
  bool_or(NOT active) AS past,
  min(ingredient) FILTER (WHERE active) AS active_therapy
FROM therapy_record WHERE reason IS NULL GROUP BY patient_id`;

/** Every patient with a current scan in the window (medication-only patients are not part of the cohort). */
export const COHORT_ROW_SQL = `SELECT p.*,
  CASE WHEN t.active_antiresorptive OR t.active_anabolic THEN 'active' WHEN t.past THEN 'past' ELSE 'none' END AS therapy,
  list_filter(['antiresorptive', 'anabolic'], lambda c: (c = 'antiresorptive' AND t.active_antiresorptive) OR (c = 'anabolic' AND t.active_anabolic)) AS therapy_classes,
  t.active_therapy
FROM patient p LEFT JOIN therapy t USING (patient_id)`;

/** WHERE clause of rowMatches (query.ts): category, untreated, and declining = the fitted loss at least this
 * fast AND a decline beyond the least significant change, both over the rate window (rate-of-change.ts
 * isFastDecline). */
export function matchWhereSql(q: ParsedCohortQuery): string {
  const parts = ['TRUE'];
  if (q.category) parts.push(`category = ${sqlString(q.category)}`);
  if (q.untreated) parts.push(`therapy <> 'active'`);
  if (q.decliningPctPerYear !== undefined) {
    parts.push(`trend_pct_per_year <= -${sqlNumber(q.decliningPctPerYear)}`, `change_verdict = 'decline'`);
  }
  return parts.join(' AND ');
}

/** compareRows (query.ts): lowest vBMD, then fastest decline, then patient id; with --declining the fastest
 * decline first. Missing values sort last as Infinity does there. */
export function orderBySql(q: ParsedCohortQuery): string {
  const vbmd = 'c.vbmd_mg_cm3 ASC NULLS LAST';
  const trend = 'c.trend_pct_per_year ASC NULLS LAST';
  return q.decliningPctPerYear !== undefined ? `${trend}, ${vbmd}, c.patient_id` : `${vbmd}, ${trend}, c.patient_id`;
}

/** The rows a query returns, with the latest scan's text joined back (LEFT: a patient whose scans were all
 * indeterminate has none). */
export function rowsSql(q: ParsedCohortQuery, columns: string): string {
  return `SELECT ${columns} FROM (SELECT * FROM cohort_row WHERE ${matchWhereSql(q)}) c LEFT JOIN scan s ON s.row_id = c.latest_row ORDER BY ${orderBySql(q)}`;
}
