import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CohortQuery, CohortResult } from '../../src/population/query.js';
import { runCohort } from '../../src/population/query.js';
import { COHORT_RESOURCE_TYPES } from '../../src/population/resources.js';
import { NdjsonDirectorySource, ndjsonFiles } from '../../src/population/sources/ndjson-dir.js';
import { runCohortSql } from '../../src/population/sql/run-cohort-sql.js';
import { ENGINE_EXPECTED, writeEngineFixture } from './engine-fixture.js';
import { AS_OF, EXPECTED } from './fixtures.js';
import { comparable } from './known-answers.js';

/**
 * The streaming cohort (runCohort) and the DuckDB cohort (runCohortSql, over the NDJSON and over a kept
 * Parquet stage) read the shared fixture to the same rows, counts and skip reasons for every query; the
 * fixture's hand-written answers hold for all three.
 */
const QUERIES: Record<string, Omit<CohortQuery, 'asOf'> & { asOf?: string }> = {
  all: {},
  osteoporosisUntreated: { category: 'osteoporosis', untreated: true },
  declining5: { decliningPctPerYear: 5 },
  declining3: { decliningPctPerYear: 3 },
  osteopenia: { category: 'osteopenia' },
  year2024: { since: '2024-01-01', until: '2024-12-31' },
  window2019: { since: '2019-01-01', until: '2020-12-31' },
  normalUntreated: { category: 'normal', untreated: true },
  asOf2024: { asOf: '2024-01-01', untreated: true },
};

let dir: string;
let stage: string;
const results: Record<string, { stream: CohortResult; duckdb: CohortResult; parquet: CohortResult }> = {};

const sameAnswer = (r: CohortResult) => ({
  ...(comparable(r) as object),
  skipped: r.summary.skipped,
  resourcesRead: r.summary.resourcesRead,
  therapyRecordsRead: r.summary.therapyRecordsRead,
  matched: r.summary.matched,
});

beforeAll(async () => {
  dir = await writeEngineFixture();
  stage = join(dir, 'stage');
  const files = await ndjsonFiles(dir, COHORT_RESOURCE_TYPES);
  for (const [name, q] of Object.entries(QUERIES)) {
    const query = { asOf: AS_OF, ...q };
    const first = name === 'all';
    results[name] = {
      stream: await runCohort(new NdjsonDirectorySource(dir), query),
      // The first DuckDB run keeps its Parquet stage; the others read it.
      duckdb: await runCohortSql({ kind: 'ndjson', files, label: 'fixture', ...(first ? { stageDir: stage } : {}) }, query),
      parquet: await runCohortSql({ kind: 'parquet', dir: stage, label: 'stage' }, query),
    };
  }
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the streaming and the DuckDB cohort agree on the shared fixture', () => {
  it.each(Object.keys(QUERIES))('%s: same rows, counts and skip reasons', (name) => {
    const r = results[name]!;
    expect(r.stream.rows.length).toBeGreaterThan(0);
    expect(sameAnswer(r.duckdb)).toEqual(sameAnswer(r.stream));
    expect(sameAnswer(r.parquet)).toEqual(sameAnswer(r.stream));
  });

  it('gives the hand-written answers (each engine)', () => {
    for (const engine of ['stream', 'duckdb', 'parquet'] as const) {
      const all = results.all![engine];
      const by = new Map(all.rows.map((row) => [row.patient, row]));
      for (const [patient, want] of Object.entries(ENGINE_EXPECTED.latest)) {
        const row = by.get(patient);
        expect({ engine, patient, vbmd: row?.latestVbmdMgCm3, therapy: row?.therapy, activeTherapy: row?.activeTherapy }).toEqual({ engine, patient, ...want });
      }
      for (const patient of ENGINE_EXPECTED.absent) expect(by.has(patient), `${engine} ${patient}`).toBe(false);
      for (const [patient, u] of Object.entries(ENGINE_EXPECTED.uncalibrated)) expect(by.get(patient)?.uncalibrated, `${engine} ${patient}`).toBe(u);
      for (const [patient, c] of Object.entries(ENGINE_EXPECTED.categories)) expect(by.get(patient)?.category, `${engine} ${patient}`).toBe(c);
      for (const [patient, n] of Object.entries(ENGINE_EXPECTED.scans)) expect(by.get(patient)?.scans, `${engine} ${patient}`).toBe(n);
      for (const [patient, v] of Object.entries(ENGINE_EXPECTED.verdicts)) expect(by.get(patient)?.change?.verdict, `${engine} ${patient}`).toBe(v);
      expect(by.get('e-lsc-within')!.trend!.pctPerYear, engine).toBeLessThan(-5);
      // The last 3 years only (src/trend/rate-of-change.ts): 4 of 13 scans, -6.1 %/year; 3 of 7, +0.5 %/year.
      expect(by.get('e-recent-decline')!.trend, engine).toMatchObject({ scans: 4 });
      expect(by.get('e-recent-decline')!.trend!.pctPerYear, engine).toBeCloseTo(-6.1475, 3);
      expect(by.get('e-old-decline')!.trend!.pctPerYear, engine).toBeCloseTo(0.5007, 3);
      expect(by.get('e-two-drugs')!.therapyClasses, engine).toEqual(['antiresorptive', 'anabolic']);
      expect(by.get('e-newest-indeterminate')!.latestScanIndeterminate, engine).toBe(true);
      expect(all.summary.skipped, engine).toMatchObject(ENGINE_EXPECTED.skipped);

      const untreated = results.osteoporosisUntreated![engine].rows.map((row) => row.patient);
      for (const p of EXPECTED.osteoporosisUntreated) expect(untreated, engine).toContain(p);
      for (const p of ['e-unresolved', 'e-contained-missing', 'e-eie-med', 'e-reanalysis', 'e-not-taken']) expect(untreated, engine).toContain(p);
      for (const p of ['e-contained-treated', 'e-contained-statement', 'op-treated-stable', 'e-second-coding', 'e-two-drugs']) expect(untreated, engine).not.toContain(p);

      const declining = results.declining5![engine].rows.map((row) => row.patient);
      for (const p of ENGINE_EXPECTED.declining5Includes) expect(declining, engine).toContain(p);
      for (const p of ENGINE_EXPECTED.declining5Excludes) expect(declining, engine).not.toContain(p);
      for (const p of ENGINE_EXPECTED.declining3Excludes) expect(results.declining3![engine].rows.map((row) => row.patient), engine).not.toContain(p);
      expect(results.window2019![engine].rows.map((row) => row.patient), engine).toEqual(['window']);
      expect(results.window2019![engine].summary.skipped['outside-window'], engine).toBeGreaterThan(0);
    }
  });
});
