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
import { categorySql, COHORT_ROW_SQL, PATIENT_SQL, rowsSql, THERAPY_SQL } from './cohort-query.js';
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
  /** Hand the matched rows over in order, a chunk at a time, instead of returning them (result.rows is then
   * empty): a CSV of millions of rows is written without holding them. */
  onRows?: (rows: readonly CohortRow[]) => void | Promise<void>;
}

const SKIP_REASONS: readonly (SkipReason | 'outside-window')[] = [
  'invalid', 'not-vbmd', 'entered-in-error', 'not-a-result', 'no-subject', 'no-effective-time', 'unit', 'superseded',
  'not-bone-therapy', 'unresolved-medication-reference', 'other-resource-type', 'outside-window',
];
const CATEGORY_ORDER = ['osteoporosis', 'osteopenia', 'normal', 'indeterminate'] as const;
const EMPTY_COUNTS = (): Record<BmdCategory, number> => ({ osteoporosis: 0, osteopenia: 0, normal: 0, indeterminate: 0 });

/** The row columns, in the order rowOf reads them. */
const ROW_SELECT = `c.patient_id, s.effective, c.vbmd_mg_cm3, c.category, s.basis, s.status, s.uncalibrated, s.study_uid, s.id,
  c.scans::INTEGER, c.measured_scans::INTEGER, c.latest_scan_indeterminate,
  c.trend_mg_cm3_per_year, c.trend_pct_per_year, c.trend_span_years, c.trend_scans::INTEGER,
  c.change_from_ms::DOUBLE, c.change_to_ms::DOUBLE, c.change_mg_cm3, c.change_pct, c.change_lsc_mg_cm3, c.change_verdict,
  c.therapy, c.therapy_classes, c.active_therapy`;

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
  await writeParquetStage(db, input.files, dir);
  return dir;
}

type Step = (name: string, f: () => Promise<void>) => Promise<void>;

/** Stage (or open the stage), then the query's views and its intermediate Parquet files: `cohort_row` holds
 * one row per patient in the window. */
async function buildCohort(db: DuckDbSession, input: SqlCohortInput, matcher: TherapyMatcher, step: Step): Promise<void> {
  let stage = '';
  await step(input.kind === 'ndjson' ? 'reading NDJSON' : 'opening the stage', async () => {
    stage = await stageOf(db, input);
  });
  await step('applying the result rules', async () => {
    const source = stageSourceSql(stage);
    await db.run(`CREATE VIEW scan AS ${scanSql(source.resources)}`);
    await db.run(`CREATE VIEW reanalysed AS SELECT * FROM ${source.reanalysed}`);
    await db.materialize('superseded', SUPERSEDED_SQL);
    await db.run(`CREATE VIEW current_scan AS ${CURRENT_SCAN_SQL}`);
    await db.run(`CREATE VIEW therapy_record AS ${therapyRecordSql(matcher.tables)}`);
  });
  await step('per patient', async () => {
    await db.run(`CREATE VIEW patient AS ${PATIENT_SQL}`);
    await db.run(`CREATE VIEW therapy AS ${THERAPY_SQL}`);
    await db.materialize('cohort_row', COHORT_ROW_SQL);
  });
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
  const step: Step = async (name, f) => {
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
    await buildCohort(db, input, matcher, step);
    const rows: CohortRow[] = [];
    let matched = 0;
    const summary = { byCategory: EMPTY_COUNTS(), matchedByCategory: EMPTY_COUNTS(), byMonth: [] as MonthCounts[], skipped: {} as CohortSummary['skipped'], scansRead: 0, therapyRecordsRead: 0, resourcesRead: 0 };
    await step('reading the rows', async () => {
      // Each row as one JSON array: converting DuckDB values one by one cost 1.4 s of CPU for 104k rows of
      // the 5M bench, JSON.parse of one string per row 0.9 s.
      for await (const chunk of db.stream(rowsSql(q, `json_array(${ROW_SELECT})::VARCHAR`))) {
        const parsed = chunk.map(([json]) => rowOf(JSON.parse(json as string) as unknown[]));
        matched += parsed.length;
        for (const r of parsed) summary.matchedByCategory[r.category]++;
        if (options.onRows) await options.onRows(parsed);
        else rows.push(...parsed);
        options.signal?.throwIfAborted();
      }
      Object.assign(summary, await summaryOf(db));
    });
    return {
      rows,
      summary: {
        source: input.label,
        valueSet: matcher.name,
        query: q,
        asOf: new Date(asOfMs).toISOString(),
        patients: Object.values(summary.byCategory).reduce((a, b) => a + b, 0),
        matched,
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
  const byMonth = new Map<string, MonthCounts>();
  const skipped = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as CohortSummary['skipped'];
  let resourcesRead = 0;
  let scansRead = 0;
  // One pass over the scans: every row by reason; the counted ones (reason NULL) by superseded or not, and
  // the current ones by month and category.
  const counts = await db.rows(`SELECT reason, superseded, CASE WHEN current THEN month END, CASE WHEN current THEN ${categorySql('vbmd_mg_cm3')} END, count(*)
    FROM (SELECT *, reason IS NULL AND NOT superseded AS current FROM (SELECT reason, month, vbmd_mg_cm3, row_id IN (SELECT row_id FROM superseded) AS superseded FROM scan))
    GROUP BY ALL`);
  for (const [reason, superseded, month, category, count] of counts) {
    const n = num(count);
    resourcesRead += n;
    if (reason === 'medication') continue;
    if (reason !== null) skipped[reason as keyof typeof skipped] += n;
    else {
      // Scans read = results in the window, superseded ones included (aggregate.ts counts them on arrival).
      scansRead += n;
      if (superseded === true) skipped.superseded += n;
      else {
        const m = byMonth.get(String(month)) ?? { month: String(month), scans: 0, osteoporosis: 0, osteopenia: 0, normal: 0, indeterminate: 0 };
        m.scans += n;
        m[category as BmdCategory] += n;
        byMonth.set(m.month, m);
      }
    }
  }
  let therapyRecordsRead = 0;
  for (const [reason, n] of await db.rows(`SELECT reason, count(*) FROM therapy_record GROUP BY ALL`)) {
    if (reason === null) therapyRecordsRead = num(n);
    else skipped[reason as keyof typeof skipped] += num(n);
  }
  const months = [...byMonth.values()].sort((x, y) => (x.month < y.month ? -1 : x.month > y.month ? 1 : 0));
  return { byCategory, byMonth: months, skipped, resourcesRead, scansRead, therapyRecordsRead };
}
