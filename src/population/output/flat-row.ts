import { WITHIN_MEASUREMENT_ERROR } from '../../trend/significant-change.js';
import type { CohortRow } from '../aggregate.js';

/** One flat record per patient: the column set of CSV, NDJSON and the table (snake_case like the
 * ViewDefinition columns, so files from here and from SQL line up). */
export const COHORT_COLUMNS = [
  'patient_id',
  'latest_date',
  'vbmd_mg_cm3',
  'category',
  'basis',
  'status',
  'uncalibrated',
  'scans',
  'measured_scans',
  'latest_scan_indeterminate',
  'trend_pct_per_year',
  'trend_mg_cm3_per_year',
  'trend_span_years',
  'change_pct',
  'change_vs_lsc',
  'therapy',
  'therapy_classes',
  'active_therapy',
  'study_uid',
] as const;
export type CohortColumn = (typeof COHORT_COLUMNS)[number];
export type FlatCohortRow = Record<CohortColumn, string | number | boolean | null>;

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export function flattenRow(r: CohortRow): FlatCohortRow {
  return {
    patient_id: r.patient,
    latest_date: r.latestEffective,
    vbmd_mg_cm3: r.latestVbmdMgCm3,
    category: r.category,
    basis: r.basis,
    status: r.status,
    uncalibrated: r.uncalibrated,
    scans: r.scans,
    measured_scans: r.measuredScans,
    latest_scan_indeterminate: r.latestScanIndeterminate,
    trend_pct_per_year: r.trend ? round(r.trend.pctPerYear, 2) : null,
    trend_mg_cm3_per_year: r.trend ? round(r.trend.mgCm3PerYear, 2) : null,
    trend_span_years: r.trend ? round(r.trend.spanYears, 2) : null,
    change_pct: r.change ? round(r.change.deltaPct, 2) : null,
    // 'decline' / 'gain' beyond the least significant change, else 'within measurement error'.
    change_vs_lsc: r.change ? (r.change.verdict === 'within-measurement-error' ? WITHIN_MEASUREMENT_ERROR : r.change.verdict) : null,
    therapy: r.therapy,
    therapy_classes: r.therapyClasses.length ? r.therapyClasses.join(';') : null,
    active_therapy: r.activeTherapy,
    study_uid: r.studyUid,
  };
}
