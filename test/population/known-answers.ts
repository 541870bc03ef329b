import { expect } from 'vitest';
import { flattenRow } from '../../src/population/output/flat-row.js';
import type { CohortResult } from '../../src/population/query.js';
import { runCohort } from '../../src/population/query.js';
import type { CohortQuery } from '../../src/population/query.js';
import type { ResourceSource } from '../../src/population/sources/types.js';
import { AS_OF, EXPECTED } from './fixtures.js';

/** Runs every cohort query against a source holding cohortFixture() and checks the known answers. Returns
 * the plain results so callers can compare sources with each other. */
export async function checkKnownAnswers(source: ResourceSource): Promise<Record<string, CohortResult>> {
  const run = (q: Omit<CohortQuery, 'asOf'> = {}) => runCohort(source, { ...q, asOf: AS_OF });
  const out: Record<string, CohortResult> = {};

  const all = (out.all = await run());
  expect(all.summary.patients).toBe(EXPECTED.patients);
  expect(all.summary.byCategory).toEqual(EXPECTED.byCategory);
  expect(all.summary.scansRead).toBe(EXPECTED.totalScans);
  expect(all.summary.skipped['entered-in-error']).toBe(1);
  // The lab Observation: dropped by the code search on a FHIR server, skipped by the cohort from files.
  expect(all.summary.skipped['not-vbmd']).toBeLessThanOrEqual(1);
  const byPatient = new Map(all.rows.map((r) => [r.patient, r]));
  for (const [patient, want] of Object.entries(EXPECTED.latest)) {
    const row = byPatient.get(patient);
    expect(row, patient).toBeDefined();
    expect({ patient, vbmd: row!.latestVbmdMgCm3, category: row!.category, therapy: row!.therapy }).toEqual({ patient, ...want });
  }
  expect(byPatient.has('no-scans')).toBe(false);
  expect(byPatient.get('latest-indeterminate')!.latestScanIndeterminate).toBe(true);
  expect(byPatient.get('latest-indeterminate')!.scans).toBe(2);
  expect(byPatient.get('op-denosumab-statement')!.activeTherapy).toBe('denosumab');
  expect(byPatient.get('op-anabolic')!.therapyClasses).toEqual(['anabolic']);
  expect(byPatient.get('op-denosumab-statement')!.basis).toBe('thoracic-extrapolated');
  expect(byPatient.get('op-untreated-declining')!.trend!.pctPerYear).toBeCloseTo(EXPECTED.decliningPct, 6);
  expect(byPatient.get('penia-declining')!.trend!.pctPerYear).toBeCloseTo(EXPECTED.peniaDecliningPct, 6);
  expect(byPatient.get('penia-short-span')!.trend).toBeNull();
  expect(byPatient.get('latest-indeterminate')!.trend).toBeNull();
  expect(Math.abs(byPatient.get('op-treated-stable')!.trend!.pctPerYear)).toBeLessThan(1);
  expect(all.summary.byMonth.find((m) => m.month === '2024-01')).toEqual(EXPECTED.month202401);
  expect(all.summary.byMonth.reduce((s, m) => s + m.scans, 0)).toBe(EXPECTED.totalScans);

  out.untreated = await run({ category: 'osteoporosis', untreated: true });
  expect(out.untreated.rows.map((r) => r.patient)).toEqual(EXPECTED.osteoporosisUntreated);
  expect(out.untreated.summary.byCategory).toEqual(EXPECTED.byCategory);

  out.osteopenia = await run({ category: 'osteopenia' });
  expect(out.osteopenia.rows.map((r) => r.patient).sort()).toEqual(['entered-in-error', 'latest-indeterminate', 'penia-declining', 'penia-short-span']);

  out.declining5 = await run({ decliningPctPerYear: 5 });
  expect(out.declining5.rows.map((r) => r.patient)).toEqual(EXPECTED.declining5);
  out.declining6 = await run({ decliningPctPerYear: 6 });
  expect(out.declining6.rows.map((r) => r.patient)).toEqual(EXPECTED.declining6);

  out.window = await run({ since: '2019-01-01', until: '2020-12-31' });
  expect(out.window.rows.map((r) => ({ patient: r.patient, vbmd: r.latestVbmdMgCm3, category: r.category }))).toEqual(EXPECTED.window2019);
  return out;
}

/** The parts of a result that must not depend on the source (ids and labels do). */
export function comparable(r: CohortResult): unknown {
  return {
    rows: r.rows.map((row) => flattenRow({ ...row, observationId: null })),
    patients: r.summary.patients,
    byCategory: r.summary.byCategory,
    matchedByCategory: r.summary.matchedByCategory,
    byMonth: r.summary.byMonth,
    scansRead: r.summary.scansRead,
  };
}
