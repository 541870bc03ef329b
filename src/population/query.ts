import { z } from 'zod';
import type { BmdCategory } from '../bmd/report.js';
import { isFastDecline } from '../trend/rate-of-change.js';
import { VbmdError } from '../util/errors.js';
import type { CohortRow, MonthCounts } from './aggregate.js';
import { CATEGORIES, CohortAccumulator } from './aggregate.js';
import { COHORT_RESOURCE_TYPES, extractResource, fhirDateTimeToMs } from './resources.js';
import type { SkipReason } from './resources.js';
import type { ResourceSource } from './sources/types.js';
import type { TherapyMatcher } from './therapy-value-set.js';
import { compileTherapyValueSet, defaultTherapyValueSet } from './therapy-value-set.js';

/** A FHIR date or dateTime with zone, e.g. 2024-01-31 or 2024-01-31T12:00:00Z. */
const fhirDate = z
  .string()
  .refine((v) => fhirDateTimeToMs(v) !== null, 'must be a date (YYYY, YYYY-MM, YYYY-MM-DD) or a dateTime with a zone');

/**
 * The cohort question, shared by `vbmd cohort` flags and `GET /api/cohort` query parameters (same names in
 * camelCase here). Every filter narrows the rows; the counts by category are always over all patients in the
 * window, so a filtered list can be read against its denominator.
 */
export const cohortQuerySchema = z
  .object({
    category: z.enum(['osteoporosis', 'osteopenia', 'normal', 'indeterminate']).optional(),
    untreated: z.boolean().default(false),
    /** Keep patients losing at least this much per year (a positive number: 3 means slope <= -3 %/year). */
    decliningPctPerYear: z.number().positive().max(100).optional(),
    /** Scans on or after this date/time. */
    since: fhirDate.optional(),
    /** Scans on or before this date (a date-only bound includes its whole day; a partial date its whole
     * month or year). */
    until: fhirDate.optional(),
    /** Reference time for "active" therapy (default now). */
    asOf: fhirDate.optional(),
  })
  .strict();
export type CohortQuery = z.input<typeof cohortQuerySchema>;
export type ParsedCohortQuery = z.output<typeof cohortQuerySchema>;

export interface CohortSummary {
  source: string;
  valueSet: string;
  query: ParsedCohortQuery;
  asOf: string;
  /** Patients with at least one summary vBMD Observation in the window. */
  patients: number;
  /** Rows after the filters. */
  matched: number;
  /** Latest category of every patient in the window (the denominator). */
  byCategory: Record<BmdCategory, number>;
  /** Latest category of the matched rows. */
  matchedByCategory: Record<BmdCategory, number>;
  /** Summary Observations (scans analysed) per calendar month of acquisition, with their categories. */
  byMonth: MonthCounts[];
  resourcesRead: number;
  scansRead: number;
  therapyRecordsRead: number;
  skipped: Record<SkipReason | 'outside-window', number>;
  elapsedMs: number;
}

export interface CohortResult {
  rows: CohortRow[];
  summary: CohortSummary;
}

export interface RunCohortOptions {
  matcher?: TherapyMatcher;
  signal?: AbortSignal;
  /** Called at most every progressEveryMs with the running totals (for a terminal progress line). */
  onProgress?: (p: { resources: number; patients: number; stage: string }) => void;
  progressEveryMs?: number;
  /** Injected clock for asOf (tests). */
  nowMs?: number;
}

/** Exclusive end of a date/dateTime bound: '2024-03-15' -> start of 2024-03-16; '2024-03' -> 2024-04-01. */
export function exclusiveEndMs(value: string): number {
  const ms = fhirDateTimeToMs(value) as number;
  if (/T/.test(value)) return ms + 1;
  const d = new Date(ms);
  if (/^\d{4}$/.test(value)) return Date.UTC(d.getUTCFullYear() + 1, 0, 1);
  if (/^\d{4}-\d{2}$/.test(value)) return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return ms + 86_400_000;
}

export function parseCohortQuery(input: unknown): ParsedCohortQuery {
  const parsed = cohortQuerySchema.safeParse(input);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ');
    throw new VbmdError('bad-input', `The cohort query is not valid (${why}).`);
  }
  const q = parsed.data;
  if (q.since && q.until && fhirDateTimeToMs(q.since)! >= exclusiveEndMs(q.until)) {
    throw new VbmdError('bad-input', `The cohort window is empty: since ${q.since} is after until ${q.until}.`);
  }
  return q;
}

function emptyCounts(): Record<BmdCategory, number> {
  return { osteoporosis: 0, osteopenia: 0, normal: 0, indeterminate: 0 };
}

/** Lowest vBMD first (the most urgent), then fastest decline, then patient id: a stable order whatever the
 * source. With --declining the question is "who loses bone fastest", so the fastest decline comes first. */
function compareRows(a: CohortRow, b: CohortRow, byDecline: boolean): number {
  const va = a.latestVbmdMgCm3 ?? Infinity;
  const vb = b.latestVbmdMgCm3 ?? Infinity;
  const sa = a.trend?.pctPerYear ?? Infinity;
  const sb = b.trend?.pctPerYear ?? Infinity;
  if (byDecline && sa !== sb) return sa - sb;
  if (va !== vb) return va - vb;
  if (sa !== sb) return sa - sb;
  return a.patient < b.patient ? -1 : a.patient > b.patient ? 1 : 0;
}

export function rowMatches(row: CohortRow, q: ParsedCohortQuery): boolean {
  if (q.category && row.category !== q.category) return false;
  if (q.untreated && row.therapy === 'active') return false;
  // Declining = the fitted loss is at least this fast AND the change is beyond the least significant change
  // (src/trend/rate-of-change.ts isFastDecline: the card's and the app's rule too).
  if (q.decliningPctPerYear !== undefined && !isFastDecline(row.trend ? { percentPerYear: row.trend.pctPerYear, change: row.change } : null, q.decliningPctPerYear)) return false;
  return true;
}

/**
 * Runs one cohort query over a source: a single streaming pass that reads Observations and the two medication
 * types, keeps one small record per patient, then filters and sorts the per-patient rows.
 */
export async function runCohort(source: ResourceSource, query: CohortQuery, options: RunCohortOptions = {}): Promise<CohortResult> {
  const started = performance.now();
  const q = parseCohortQuery(query);
  const matcher = options.matcher ?? compileTherapyValueSet(defaultTherapyValueSet());
  const asOfMs = q.asOf ? fhirDateTimeToMs(q.asOf)! : (options.nowMs ?? Date.now());
  const acc = new CohortAccumulator({
    sinceMs: q.since ? fhirDateTimeToMs(q.since)! : undefined,
    untilMs: q.until ? exclusiveEndMs(q.until) : undefined,
  });
  let stage = 'starting';
  const every = options.progressEveryMs ?? 500;
  let lastProgress = 0;
  const report = (force = false) => {
    if (!options.onProgress) return;
    const now = performance.now();
    if (!force && now - lastProgress < every) return;
    lastProgress = now;
    options.onProgress({ resources: acc.resourcesRead, patients: acc.patientCount, stage });
  };
  const iterable = source.batches(COHORT_RESOURCE_TYPES, {
    signal: options.signal,
    sinceIso: q.since,
    untilIso: q.until ? new Date(exclusiveEndMs(q.until)).toISOString() : undefined,
    onProgress: (text) => {
      stage = text;
      report(true);
    },
  });
  for await (const batch of iterable) {
    for (const raw of batch) acc.add(extractResource(raw, matcher, asOfMs));
    options.signal?.throwIfAborted();
    report();
  }
  stage = 'done';
  report(true);

  const byCategory = emptyCounts();
  const matchedByCategory = emptyCounts();
  const rows: CohortRow[] = [];
  let patients = 0;
  for (const row of acc.rows()) {
    patients++;
    byCategory[row.category]++;
    if (!rowMatches(row, q)) continue;
    matchedByCategory[row.category]++;
    rows.push(row);
  }
  const byDecline = q.decliningPctPerYear !== undefined;
  rows.sort((a, b) => compareRows(a, b, byDecline));
  return {
    rows,
    summary: {
      source: source.label,
      valueSet: matcher.name,
      query: q,
      asOf: new Date(asOfMs).toISOString(),
      patients,
      matched: rows.length,
      byCategory,
      matchedByCategory,
      byMonth: acc.monthCounts(),
      resourcesRead: acc.resourcesRead,
      scansRead: acc.scansRead,
      therapyRecordsRead: acc.therapyRecordsRead,
      skipped: { ...acc.skipped },
      elapsedMs: Math.round(performance.now() - started),
    },
  };
}

export { CATEGORIES };
