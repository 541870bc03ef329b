import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import type { Observation } from 'fhir/r4.js';
import { patientViewFindings } from '../../cds-hooks/patient-view-card.js';
import { readVbmdResults as cdsRead } from '../../cds-hooks/vbmd-results.js';
import { parseVbmdObservations } from '../../smart-app/src/fhir-parse.js';
import { buildTrend, changeSincePreviousStudy, rateOfChange } from '../../smart-app/src/trend.js';
import type { BmdCategory } from '../../src/bmd/report.js';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { ANALYSIS_EXT, VBMD_ANALYSIS_EXTENSION, VBMD_BASIS_CODES, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';
import { rowMatches, runCohort } from '../../src/population/query.js';
import type { ResourceSource } from '../../src/population/sources/types.js';
import { changeSincePrevious } from '../../src/trend/significant-change.js';
import { lumbarOsteoporosisReport } from './reports.js';

/**
 * The three readers of vBMD results - the CDS card (cds-hooks/vbmd-results.ts + patient-view-card.ts), the
 * SMART app (smart-app/src/fhir-parse.ts + trend.ts, bundled for the browser) and the cohort
 * (src/population runCohort) - on one table of edge cases: each must state the same latest measured value,
 * ACR category, calibration state, fast-decline call and change verdict, and the table says which.
 */
type Over = Partial<Observation> & Record<string, unknown>;
const UCUM = 'http://unitsofmeasure.org';
let seq = 0;

function obs(value: number | null, over: Over = {}): Observation {
  return {
    resourceType: 'Observation',
    id: `o${++seq}`,
    status: 'final',
    code: { coding: [{ ...VBMD_SUMMARY_CODE }] },
    subject: { reference: 'Patient/p' },
    effectiveDateTime: '2025-03-01T10:00:00Z',
    issued: '2025-03-01T12:00:00Z',
    ...(value === null ? { dataAbsentReason: { text: 'Indeterminate' } } : { valueQuantity: { value, unit: 'mg/cm3', system: UCUM, code: 'mg/cm3' } }),
    method: { coding: [{ ...VBMD_BASIS_CODES.lumbar }] },
    ...over,
  } as Observation;
}
const study = (uid: string): Over => ({ partOf: [{ identifier: { system: 'urn:dicom:uid', value: `urn:oid:${uid}` } }] });
const nominal: Over = {
  extension: [{ url: VBMD_ANALYSIS_EXTENSION, extension: [{ url: ANALYSIS_EXT.calibrationMethod, valueCoding: { code: 'calibration-nominal' } }, { url: ANALYSIS_EXT.calibrationTraceable, valueBoolean: false }] }],
};
const at = (date: string): Over => ({ effectiveDateTime: date, issued: date });
const qty = (value: number, unit: string, code: string | null, system: string | null = UCUM): Over => ({
  valueQuantity: { value, unit, ...(code !== null ? { code } : {}), ...(system !== null ? { system } : {}) },
});
/** What the real writer stores (src/fhir/observation.ts). */
const written = (() => {
  const b = buildAnalysisBundle(lumbarOsteoporosisReport(), { patient: 'Patient/p', issued: '2024-03-06T10:00:00Z' });
  return { ...(b.entry!.find((e) => e.resource?.resourceType === 'Observation')!.resource as Observation), id: 'written' };
})();

interface Expected {
  latest: number | null;
  category?: BmdCategory;
  uncalibrated?: boolean;
  /** Fast decline (>= 5 %/year and beyond the least significant change). */
  fast?: boolean;
  /** Latest against the previous measured result. */
  change?: 'decline' | 'gain' | 'within-measurement-error' | null;
}

const CASES: [string, Observation[], Expected][] = [
  ['the real writer', [written], { latest: 74.1, category: 'osteoporosis', uncalibrated: false }],
  ['final in mg/cm3', [obs(74.1)], { latest: 74.1, category: 'osteoporosis', uncalibrated: false }],
  ['amended counts', [obs(90, { status: 'amended' })], { latest: 90, category: 'osteopenia' }],
  ['corrected counts', [obs(125, { status: 'corrected' })], { latest: 125, category: 'normal' }],
  ['legacy preliminary (no extension) is uncalibrated', [obs(95, { status: 'preliminary' })], { latest: 95, uncalibrated: true }],
  ['nominal calibration in the extension is uncalibrated whatever the status', [obs(95, { status: 'amended', ...nominal })], { latest: 95, uncalibrated: true }],
  ['entered-in-error alone', [obs(60, { status: 'entered-in-error' })], { latest: null }],
  ['entered-in-error newer than a final', [obs(100, at('2024-01-01T00:00:00Z')), obs(60, { status: 'entered-in-error' })], { latest: 100 }],
  ['cancelled, registered, unknown are not results', [obs(60, { status: 'cancelled' }), obs(61, { status: 'registered' }), obs(62, { status: 'unknown' })], { latest: null }],
  ['g/cm3 (UCUM) converts', [obs(0, qty(0.0741, 'g/cm3', 'g/cm3'))], { latest: 74.1, category: 'osteoporosis' }],
  ['mg/mL equals mg/cm3', [obs(0, qty(74.1, 'mg/mL', 'mg/mL'))], { latest: 74.1 }],
  ['kg/m3 equals mg/cm3', [obs(0, qty(130, 'kg/m3', 'kg/m3'))], { latest: 130, category: 'normal' }],
  ['display unit only (no code, no system)', [obs(0, qty(74.1, 'mg/cm³', null, null))], { latest: 74.1 }],
  ['areal DXA unit is refused', [obs(0, qty(0.8, 'g/cm2', 'g/cm2'))], { latest: null }],
  ['non-UCUM unit system is refused', [obs(0, qty(74.1, 'mg/cm3', 'mg/cm3', 'http://example.org/units'))], { latest: null }],
  ['no acquisition time (issued only) is not placed', [obs(74.1, { effectiveDateTime: undefined })], { latest: null }],
  ['a time without zone is refused', [obs(74.1, { effectiveDateTime: '2025-03-01T10:00:00' })], { latest: null }],
  ['a DXA code is not a vBMD result', [obs(74.1, { code: { coding: [{ system: 'http://loinc.org', code: '24966-4' }] } })], { latest: null }],
  ['stored interpretation is ignored: the value decides', [obs(130, { interpretation: [{ coding: [{ code: 'LL' }] }] })], { latest: 130, category: 'normal' }],
  ['ACR boundary 120.0 is osteopenia', [obs(120)], { latest: 120, category: 'osteopenia' }],
  ['ACR boundary 120.1 is normal', [obs(120.1)], { latest: 120.1, category: 'normal' }],
  ['ACR boundary 80.0 is osteopenia', [obs(80)], { latest: 80, category: 'osteopenia' }],
  ['ACR boundary 79.9 is osteoporosis', [obs(79.9)], { latest: 79.9, category: 'osteoporosis' }],
  [
    'same study twice: the later issued supersedes',
    [obs(70, { ...study('9.1'), issued: '2025-03-02T00:00:00Z' }), obs(75, { ...study('9.1'), issued: '2025-05-01T00:00:00Z' })],
    { latest: 75, category: 'osteoporosis', change: null },
  ],
  [
    'same study twice, arriving newest first',
    [obs(75, { ...study('9.2'), issued: '2025-05-01T00:00:00Z' }), obs(70, { ...study('9.2'), issued: '2025-03-02T00:00:00Z' })],
    { latest: 75, change: null },
  ],
  ['same study, same issued: the lower value', [obs(75, study('9.3')), obs(70, study('9.3'))], { latest: 70, change: null }],
  ['no study UID, same time: both kept, the lower is latest', [obs(75), obs(70)], { latest: 70 }],
  ['newest scan indeterminate: latest measured is the older', [obs(88, at('2024-03-01T00:00:00Z')), obs(null)], { latest: 88, category: 'osteopenia' }],
  ['indeterminate only', [obs(null)], { latest: null }],
  [
    'decline beyond the least significant change (100 -> 88 in a year)',
    [obs(100, at('2024-03-01T00:00:00Z')), obs(88, at('2025-03-01T00:00:00Z'))],
    { latest: 88, fast: true, change: 'decline' },
  ],
  [
    'fast slope within measurement error (100 -> 92 in 7 months)',
    [obs(100, at('2024-08-01T00:00:00Z')), obs(92, at('2025-03-01T00:00:00Z'))],
    { latest: 92, fast: false, change: 'within-measurement-error' },
  ],
  ['a gain beyond the least significant change', [obs(80, at('2024-03-01T00:00:00Z')), obs(90, at('2025-03-01T00:00:00Z'))], { latest: 90, fast: false, change: 'gain' }],
];

interface Seen {
  latest: number | null;
  category: BmdCategory | null;
  uncalibrated: boolean | null;
  fast: boolean;
  change: string | null;
}

function cds(resources: Observation[]): Seen {
  const results = cdsRead(resources);
  const f = patientViewFindings(results, 5);
  return {
    latest: f?.latest.vbmdMgCm3 ?? null,
    category: f?.latest.category ?? null,
    uncalibrated: f?.latest.uncalibrated ?? null,
    fast: f?.fastDecline ?? false,
    change: f?.change?.verdict ?? null,
  };
}

function app(resources: Observation[]): Seen {
  const { items } = parseVbmdObservations(resources);
  const trend = buildTrend(items);
  const last = trend.summary[trend.summary.length - 1];
  const study = last ? items.find((s) => s.observationId === last.observationId) : undefined;
  return {
    latest: last?.vbmdMgCm3 ?? null,
    category: study?.category ?? null,
    uncalibrated: study ? study.uncalibrated : null,
    fast: rateOfChange(trend.summary)?.fastDecline ?? false,
    change: changeSincePreviousStudy(trend.summary)?.verdict ?? null,
  };
}

async function cohort(resources: Observation[]): Promise<Seen> {
  const source: ResourceSource = {
    label: 'table',
    async *batches() {
      yield resources;
    },
  };
  const { rows } = await runCohort(source, {}, { nowMs: Date.parse('2025-06-01T00:00:00Z') });
  const row = rows.find((r) => r.latestVbmdMgCm3 !== null);
  return {
    latest: row?.latestVbmdMgCm3 ?? null,
    category: row ? row.category : null,
    uncalibrated: row ? row.uncalibrated : null,
    fast: row ? rowMatches(row, { untreated: false, decliningPctPerYear: 5 }) : false,
    change: row?.change?.verdict ?? null,
  };
}

describe('one reader: the CDS card, the SMART app and the cohort agree on every edge case', () => {
  it.each(CASES)('%s', async (_name, resources, expected) => {
    const seen = { cds: cds(resources), app: app(resources), cohort: await cohort(resources) };
    for (const [who, s] of Object.entries(seen)) {
      expect(s.latest, who).toBe(expected.latest);
      if (expected.category) expect(s.category, who).toBe(expected.category);
      if (expected.uncalibrated !== undefined) expect(s.uncalibrated, who).toBe(expected.uncalibrated);
      expect(s.fast, who).toBe(expected.fast ?? false);
    }
    expect(seen.app).toEqual(seen.cds);
    // The cohort states the change from the first to the latest scan of its window; with at most two
    // measured scans that is the card's and the app's "since the previous result".
    expect(seen.cohort).toEqual({ ...seen.cds, change: seen.cohort.change });
    const measured = cdsRead(resources).length;
    if (measured <= 2) expect(seen.cohort.change).toBe(seen.cds.change);
    if (expected.change !== undefined) expect(seen.cds.change).toBe(expected.change);
  });

  it('the change rule is one function: 2.77 x 3.6% (Bligh 2009, unconstrained clinical CT) = 9.97%', () => {
    const c = (a: number, b: number) => changeSincePrevious([{ tMs: 0, vbmdMgCm3: a }, { tMs: 1, vbmdMgCm3: b }])!.verdict;
    expect(c(100, 90.04)).toBe('within-measurement-error');
    expect(c(100, 90.02)).toBe('decline');
    expect(c(100, 109.96)).toBe('within-measurement-error');
    expect(c(100, 109.98)).toBe('gain');
  });

  it('the reader is browser-safe: the SMART app reading bundles for the browser with no node module', async () => {
    const out = await build({
      entryPoints: [fileURLToPath(new URL('../../smart-app/src/fhir-parse.ts', import.meta.url))],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(out.metafile.inputs);
    expect(inputs.some((i) => i.endsWith('src/fhir/result-reader.ts'))).toBe(true);
    expect(inputs.filter((i) => i.startsWith('node:') || /src\/fhir\/(identifiers|model-card|client)\.ts$/.test(i))).toEqual([]);
  });
});
