import { join } from 'node:path';
import type { BmdCategory } from '../../bmd/report.js';
import { LSC_PCT } from '../../trend/significant-change.js';
import type { ChangeVerdict } from '../../trend/significant-change.js';
import type { Basis } from '../resources.js';
import type { CohortRow, MonthCounts, TherapyOnRecord } from '../aggregate.js';
import type { CohortQuery, CohortResult, CohortSummary } from '../query.js';
import { exclusiveEndMs, parseCohortQuery } from '../query.js';
import { fhirDateTimeToMs } from '../resources.js';
import type { SkipReason } from '../resources.js';
import type { TherapyClass, TherapyMatcher } from '../therapy-value-set.js';
import { compileTherapyValueSet, defaultTherapyValueSet } from '../therapy-value-set.js';
import { categorySql, COHORT_ROW_SQL, matchWhereSql, orderBySql, PATIENT_SQL, THERAPY_SQL } from './cohort-query.js';
import { CURRENT_SCAN_SQL, scanSql, SUPERSEDED_SQL, therapyRecordSql } from './cohort-rules.js';
import type { DuckDbSession, DuckDbSettings } from './duckdb-session.js';
import { duckDbError, openDuckDb } from './duckdb-session.js';
import { readStageManifest, stageSourceSql, writeParquetStage } from './parquet-stage.js';

/**
 * `vbmd cohort` on DuckDB: the same question (query.ts CohortQuery), the same rules and the same
 * CohortResult as runCohort, for files: NDJSON (a folder or a downloaded Bulk export) is flattened into a
 * Parquet stage in one pass (kept with `stageDir`), or an existing stage is read. Then SQL does the rest
 * (cohort-rules.ts, cohort-query.ts), disk-backed, and only the matched rows come back to JS.
 */
export type SqlCohortInput = { kind: 'ndjson'; files: readonly string[]; label: string; stageDir?: string } | { kind: 'parquet'; dir: string; label: string };

export interface RunCohortSqlOptions {
  matcher?: TherapyMatcher;
  nowMs?: number;
  signal?: AbortSignal;
  duckdb?: DuckDbSettings;
  /** Called with a stage name and the fraction of it done (-1: unknown), at most every progressEveryMs. */
  onProgress?: (stage: string, fraction: number) => void;
  progressEveryMs?: number;
}

const SKIP_REASONS: readonly (SkipReason | 'outside-window')[] = [
  'invalid', 'not-vbmd', 'entered-in-error', 'not-a-result', 'no-subject', 'no-effective-time', 'unit', 'superseded',
  'not-bone-therapy', 'unresolved-medication-reference', 'other-resource-type', 'outside-window',
];
const CATEGORY_ORDER = ['osteoporosis', 'osteopenia', 'normal', 'indeterminate'] as const;
const EMPTY_COUNTS = (): Record<BmdCategory, number> => ({ osteoporosis: 0, osteopenia: 0, normal: 0, indeterminate: 0 });

/** The row columns, in the order rowOf reads them. */
const ROW_SELECT = `patient_id, latest_effective, vbmd_mg_cm3, category, basis, status, uncalibrated, study_uid, observation_id,
  scans::INTEGER, measured_scans::INTEGER, latest_scan_indeterminate,
  trend.mg_cm3_per_year, trend.pct_per_year, trend.span_years, trend.scans::INTEGER,
  change.from_ms::DOUBLE, change.to_ms::DOUBLE, change.delta_mg_cm3, change.delta_pct, change.lsc_mg_cm3, change.verdict,
  therapy, therapy_classes, active_therapy`;

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number => Number(v);

function rowOf(r: readonly unknown[]): CohortRow {
  const [patient, latestEffective, vbmd, category, basis, status, uncalibrated, studyUid, observationId, scans, measured, lastIndeterminate] = r;
  const [slope, pct, span, trendScans, fromMs, toMs, deltaMg, deltaPct, lscMg, verdict, therapy, classes, activeTherapy] = r.slice(12);
  return {
    patient: String(patient),
    latestEffective: str(latestEffective),
    latestVbmdMgCm3: vbmd === null ? null : num(vbmd),
    category: category as BmdCategory,
    basis: str(basis) as Basis | null,
    status: str(status),
    uncalibrated: uncalibrated === null ? null : uncalibrated === true,
    studyUid: str(studyUid),
    observationId: str(observationId),
    scans: num(scans),
    measuredScans: num(measured),
    latestScanIndeterminate: lastIndeterminate === true,
    trend: pct === null ? null : { mgCm3PerYear: num(slope), pctPerYear: num(pct), spanYears: num(span), scans: num(trendScans) },
    change:
      verdict === null
        ? null
        : { fromMs: num(fromMs), toMs: num(toMs), deltaMgCm3: num(deltaMg), deltaPct: num(deltaPct), lscMgCm3: num(lscMg), lscPct: LSC_PCT, verdict: verdict as ChangeVerdict },
    therapy: therapy as TherapyOnRecord,
    therapyClasses: (classes as TherapyClass[] | null) ?? [],
    activeTherapy: str(activeTherapy),
  };
}

/** The stage the query reads: an existing one, or the NDJSON staged now (kept in stageDir, else thrown away
 * with the session's folder). */
async function stageOf(db: DuckDbSession, input: SqlCohortInput): Promise<string> {
  if (input.kind === 'parquet') {
    await readStageManifest(input.dir);
    return input.dir;
  }
  const dir = input.stageDir ?? join(db.dir, 'stage');
  await writeParquetStage(db, input.files, dir, { compression: input.stageDir ? 'zstd' : 'snappy' });
  return dir;
}

/** Runs one cohort query on DuckDB; same answer as runCohort over the same resources (engines-agree test). */
export async function runCohortSql(input: SqlCohortInput, query: CohortQuery, options: RunCohortSqlOptions = {}): Promise<CohortResult> {
  const started = performance.now();
  const q = parseCohortQuery(query);
  const matcher = options.matcher ?? compileTherapyValueSet(defaultTherapyValueSet());
  const asOfMs = q.asOf ? fhirDateTimeToMs(q.asOf)! : (options.nowMs ?? Date.now());
  options.signal?.throwIfAborted();
  const db = await openDuckDb(options.duckdb);
  const onAbort = () => db.interrupt();
  options.signal?.addEventListener('abort', onAbort);
  const every = options.progressEveryMs ?? 500;
  const step = async (name: string, f: () => Promise<void>) => {
    options.onProgress?.(name, -1);
    const timer = options.onProgress ? setInterval(() => options.onProgress!(name, db.progress()), every) : undefined;
    try {
      await f();
    } catch (e) {
      throw duckDbError(e, input.label);
    } finally {
      clearInterval(timer);
    }
  };
  try {
    const vars = { since_ms: q.since ? fhirDateTimeToMs(q.since)! : -8.64e15, until_ms: q.until ? exclusiveEndMs(q.until) : 8.64e15, as_of_ms: asOfMs };
    for (const [name, v] of Object.entries(vars)) await db.run(`SET VARIABLE ${name} = ${v}::BIGINT`);
    let stage = '';
    await step(input.kind === 'ndjson' ? 'reading NDJSON' : 'opening the stage', async () => {
      stage = await stageOf(db, input);
    });
    await step('applying the result rules', async () => {
      await db.run(`CREATE VIEW scan AS ${scanSql(stageSourceSql(stage))}`);
      await db.materialize('superseded', SUPERSEDED_SQL);
      await db.run(`CREATE VIEW current_scan AS ${CURRENT_SCAN_SQL}`);
      await db.run(`CREATE VIEW therapy_record AS ${therapyRecordSql(matcher.tables)}`);
    });
    await step('per patient', async () => {
      await db.run(`CREATE VIEW patient AS ${PATIENT_SQL}`);
      await db.run(`CREATE VIEW therapy AS ${THERAPY_SQL}`);
      await db.materialize('cohort_row', COHORT_ROW_SQL);
    });
    const rows: CohortRow[] = [];
    const summary = { byCategory: EMPTY_COUNTS(), matchedByCategory: EMPTY_COUNTS(), byMonth: [] as MonthCounts[], skipped: {} as CohortSummary['skipped'], scansRead: 0, therapyRecordsRead: 0, resourcesRead: 0 };
    await step('reading the rows', async () => {
      for await (const chunk of db.stream(`SELECT ${ROW_SELECT} FROM cohort_row WHERE ${matchWhereSql(q)} ORDER BY ${orderBySql(q)}`)) {
        for (const r of chunk) rows.push(rowOf(r));
        options.signal?.throwIfAborted();
      }
      Object.assign(summary, await summaryOf(db));
    });
    for (const r of rows) summary.matchedByCategory[r.category]++;
    return {
      rows,
      summary: {
        source: input.label,
        valueSet: matcher.name,
        query: q,
        asOf: new Date(asOfMs).toISOString(),
        patients: Object.values(summary.byCategory).reduce((a, b) => a + b, 0),
        matched: rows.length,
        byCategory: summary.byCategory,
        matchedByCategory: summary.matchedByCategory,
        byMonth: summary.byMonth,
        resourcesRead: summary.resourcesRead,
        scansRead: summary.scansRead,
        therapyRecordsRead: summary.therapyRecordsRead,
        skipped: summary.skipped,
        elapsedMs: Math.round(performance.now() - started),
      },
    };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await db.close();
  }
}

/** The counts of CohortSummary: categories of every patient, scans per month, and what was not counted. */
async function summaryOf(db: DuckDbSession) {
  const byCategory = EMPTY_COUNTS();
  for (const [c, n] of await db.rows(`SELECT category, count(*) FROM cohort_row GROUP BY ALL`)) byCategory[c as BmdCategory] = num(n);
  // The month as written in the effective time (the local date of the scan); a year alone is its January.
  const month = `CASE WHEN length(effective) >= 7 THEN substr(effective, 1, 7) ELSE strftime(make_timestamp(effective_ms * 1000), '%Y-%m') END`;
  const byMonth: MonthCounts[] = (
    await db.rows(`SELECT month, count(*), ${CATEGORY_ORDER.map((c) => `count(*) FILTER (WHERE category = '${c}')`).join(', ')}
      FROM (SELECT ${month} AS month, ${categorySql('vbmd_mg_cm3')} AS category FROM current_scan) GROUP BY month ORDER BY month`)
  ).map(([m, scans, osteoporosis, osteopenia, normal, indeterminate]) => ({
    month: String(m),
    scans: num(scans),
    osteoporosis: num(osteoporosis),
    osteopenia: num(osteopenia),
    normal: num(normal),
    indeterminate: num(indeterminate),
  }));
  const skipped = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as CohortSummary['skipped'];
  let resourcesRead = 0;
  let scansRead = 0;
  // Scans read = results in the window, superseded ones included (aggregate.ts counts them on arrival).
  for (const [reason, n] of await db.rows(`SELECT reason, count(*) FROM scan GROUP BY ALL`)) {
    resourcesRead += num(n);
    if (reason === null) scansRead = num(n);
    else if (reason !== 'medication') skipped[reason as keyof typeof skipped] += num(n);
  }
  for (const [reason, n] of await db.rows(`SELECT reason, count(*) FROM therapy_record WHERE reason IS NOT NULL GROUP BY ALL UNION ALL SELECT 'superseded', count(*) FROM superseded`)) {
    skipped[reason as keyof typeof skipped] += num(n);
  }
  const [[therapyRecordsRead]] = (await db.rows(`SELECT count(*) FROM therapy_record WHERE reason IS NULL`)) as [[unknown]];
  return { byCategory, byMonth, skipped, resourcesRead, scansRead, therapyRecordsRead: num(therapyRecordsRead) };
}
