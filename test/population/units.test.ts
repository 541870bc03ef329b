import { describe, expect, it } from 'vitest';
import type { CohortRow } from '../../src/population/aggregate.js';
import { csvField, cohortCsv } from '../../src/population/output/csv.js';
import { cohortGroupJson } from '../../src/population/output/group.js';
import { cohortHistogramSvg, histogramOf } from '../../src/population/output/histogram-svg.js';
import type { CohortSummary } from '../../src/population/query.js';
import { exclusiveEndMs, parseCohortQuery, runCohort } from '../../src/population/query.js';
import type { ResourceSource } from '../../src/population/sources/types.js';
import { extractMedication, extractObservation, fhirDateTimeToMs, patientKey } from '../../src/population/resources.js';
import { compileTherapyValueSet, defaultTherapyValueSet, therapyValueSetSchema } from '../../src/population/therapy-value-set.js';
import { cohortTrend } from '../../src/population/trend.js';
import { rateOfChange } from '../../src/trend/rate-of-change.js';
import { cohortAuthFromConfig } from '../../src/population/source-auth.js';
import { vbmdObservation } from './fixtures.js';

const matcher = compileTherapyValueSet(defaultTherapyValueSet());
const asOf = Date.UTC(2025, 5, 1);

describe('resource extraction', () => {
  it('reads a summary Observation: value, category from the ACR thresholds, basis, study UID', () => {
    const x = extractObservation(vbmdObservation('p1', '2024-05-06T10:00:00+02:00', 80));
    expect(x.kind).toBe('scan');
    if (x.kind !== 'scan') return;
    expect(x.scan).toMatchObject({ patient: 'p1', vbmdMgCm3: 80, category: 'osteopenia', basis: 'lumbar', status: 'final' });
    expect(x.scan.effectiveMs).toBe(Date.UTC(2024, 4, 6, 8));
    expect(x.scan.studyUid).toMatch(/^1\.2\.826\./);
  });

  it('categorises at the ACR edges: 120 osteopenia, 120.1 normal, 79.9 osteoporosis', () => {
    const cat = (v: number) => {
      const x = extractObservation(vbmdObservation('p', '2024-01-01', v));
      return x.kind === 'scan' ? x.scan.category : x.kind;
    };
    expect([cat(120), cat(120.1), cat(80), cat(79.9)]).toEqual(['osteopenia', 'normal', 'osteopenia', 'osteoporosis']);
  });

  it('counts what it cannot use instead of guessing', () => {
    const o = vbmdObservation('p', '2024-01-01', 90);
    // One unit rule (src/fhir/result-reader.ts): UCUM mass concentrations convert, anything else is refused.
    const g = extractObservation({ ...o, valueQuantity: { value: 0.09, unit: 'g/cm3', system: 'http://unitsofmeasure.org', code: 'g/cm3' } });
    expect(g.kind === 'scan' && g.scan.vbmdMgCm3).toBe(90);
    expect(extractObservation({ ...o, valueQuantity: { value: 0.09, unit: 'g/cm2', code: 'g/cm2' } })).toEqual({ kind: 'skip', reason: 'unit' });
    expect(extractObservation({ ...o, valueQuantity: { value: 90, system: 'http://example.org/units', code: 'mg/cm3' } })).toEqual({ kind: 'skip', reason: 'unit' });
    const { effectiveDateTime: _e, ...noDate } = o;
    expect(extractObservation(noDate)).toEqual({ kind: 'skip', reason: 'no-effective-time' });
    expect(extractObservation({ ...o, effectiveDateTime: '2024-01-01T10:00:00' })).toEqual({ kind: 'skip', reason: 'no-effective-time' });
    expect(extractObservation({ ...o, subject: undefined })).toEqual({ kind: 'skip', reason: 'no-subject' });
    expect(extractObservation({ ...o, status: 'registered' })).toEqual({ kind: 'skip', reason: 'not-a-result' });
    expect(extractObservation({ ...o, code: 42 })).toEqual({ kind: 'skip', reason: 'invalid' });
  });

  it('keys patients by id whatever the reference form, and keeps other references whole', () => {
    expect(patientKey({ reference: 'Patient/abc' })).toBe('abc');
    expect(patientKey({ reference: 'https://ehr.example/fhir/Patient/abc/_history/3' })).toBe('abc');
    expect(patientKey({ reference: 'urn:uuid:1234' })).toBe('urn:uuid:1234');
    expect(patientKey({ identifier: { system: 'urn:mrn', value: '7' } })).toBe('identifier:urn:mrn|7');
    expect(patientKey(undefined)).toBeNull();
  });

  it('parses FHIR dates and refuses zone-less times', () => {
    expect(fhirDateTimeToMs('2024')).toBe(Date.UTC(2024, 0, 1));
    expect(fhirDateTimeToMs('2024-02')).toBe(Date.UTC(2024, 1, 1));
    expect(fhirDateTimeToMs('2024-02-03T04:05:06.789Z')).toBe(Date.UTC(2024, 1, 3, 4, 5, 6, 789));
    expect(fhirDateTimeToMs('2024-02-03T04:05')).toBeNull();
    expect(exclusiveEndMs('2024-02')).toBe(Date.UTC(2024, 2, 1));
    expect(exclusiveEndMs('2024-12-31')).toBe(Date.UTC(2025, 0, 1));
    expect(exclusiveEndMs('2024')).toBe(Date.UTC(2025, 0, 1));
  });
});

describe('bone-targeted therapy', () => {
  const req = (status: string, medicationCodeableConcept: unknown, extra: Record<string, unknown> = {}) => ({
    resourceType: 'MedicationRequest',
    status,
    intent: 'order',
    subject: { reference: 'Patient/p' },
    medicationCodeableConcept,
    ...extra,
  });

  it('matches RxNorm ingredient codes, ATC codes and product names; not other drugs', () => {
    const m = (c: unknown) => matcher.match(c)?.ingredient ?? null;
    expect(m({ coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '77655' }] })).toBe('zoledronic acid');
    expect(m({ coding: [{ system: 'http://www.whocc.no/atc', code: 'M05BX04' }] })).toBe('denosumab');
    expect(m({ coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '904419', display: 'alendronate sodium 70 MG Oral Tablet' }] })).toBe('alendronate');
    expect(m({ text: 'XGEVA 120 mg/1.7 mL' })).toBe('denosumab');
    expect(m({ text: 'Evenity' })).toBe('romosozumab');
    expect(m({ coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6809', display: 'metformin' }] })).toBeNull();
    // A code in the wrong system is not a match.
    expect(m({ coding: [{ system: 'http://example.org', code: '77655' }] })).toBeNull();
  });

  it('active MedicationRequest = status active and validity not ended; contained Medication is resolved', () => {
    const zol = { coding: [{ system: 'http://www.whocc.no/atc', code: 'M05BA08' }] };
    const active = (r: unknown) => {
      const x = extractMedication(r, matcher, asOf);
      return x.kind === 'therapy' ? x.therapy.active : 'reason' in x ? x.reason : x.kind;
    };
    expect(active(req('active', zol))).toBe(true);
    expect(active(req('active', zol, { dispenseRequest: { validityPeriod: { end: '2025-06-01' } } }))).toBe(true);
    expect(active(req('active', zol, { dispenseRequest: { validityPeriod: { end: '2025-05-31' } } }))).toBe(false);
    expect(active(req('on-hold', zol))).toBe(false);
    expect(active(req('entered-in-error', zol))).toBe('entered-in-error');
    expect(
      active(req('active', undefined, { medicationReference: { reference: '#m' }, contained: [{ resourceType: 'Medication', id: 'm', code: { text: 'Fosamax (alendronate)' } }] })),
    ).toBe(true);
    expect(active(req('active', undefined, { medicationReference: { reference: 'Medication/9' } }))).toBe('unresolved-medication-reference');
  });

  it('MedicationStatement: not-taken is never treatment', () => {
    const x = extractMedication(
      { resourceType: 'MedicationStatement', status: 'not-taken', subject: { reference: 'Patient/p' }, medicationCodeableConcept: { text: 'denosumab' } },
      matcher,
      asOf,
    );
    expect(x).toEqual({ kind: 'skip', reason: 'not-bone-therapy' });
  });

  it('validates a site value set', () => {
    expect(therapyValueSetSchema.safeParse({ name: 'x', ingredients: [{ name: 'a', class: 'antiresorptive', atc: ['M05'] }] }).success).toBe(false);
    expect(therapyValueSetSchema.safeParse({ name: 'x', ingredients: [] }).success).toBe(false);
  });
});

describe('trend', () => {
  const day = 86_400_000;
  const at = (tMs: number, vbmdMgCm3: number) => ({ tMs, vbmdMgCm3 });
  it('needs two scans over at least half a year', () => {
    expect(cohortTrend([at(0, 100)]).trend).toBeNull();
    expect(cohortTrend([at(0, 100), at(182 * day, 95)]).trend).toBeNull(); // 182 days < 182.625
    expect(cohortTrend([at(0, 100), at(182 * day, 95)]).change).not.toBeNull();
    expect(cohortTrend([at(0, 100), at(182 * day, 95), at(183 * day, 95)]).trend).not.toBeNull();
  });

  it('fits least squares and gives %/year of the fitted first value', () => {
    // 100, 92, 90, 80 at 0, 1, 2, 3 years: slope -31/5 = -6.2, intercept 90.5 + 6.2 * 1.5 = 99.8 (normal equations by hand).
    const t = cohortTrend([100, 92, 90, 80].map((v, i) => at(Date.UTC(2020, 0, 1) + i * 365.25 * day, v))).trend!;
    expect(t.mgCm3PerYear).toBeCloseTo(-6.2, 9);
    expect(t.pctPerYear).toBeCloseTo((-6.2 / 99.8) * 100, 9);
    expect(t.spanYears).toBeCloseTo(3, 9);
  });

  it('is the card\'s rate: the 3 years up to the latest scan, and the change over the same years', () => {
    const year = 365.25 * day;
    // A loss of 40 five years ago, stable since: no decline now, as the card and the app say.
    const pts = [at(0, 140), at(1 * year, 100), at(3 * year, 100), at(4 * year, 99), at(6 * year, 100)];
    const { trend, change } = cohortTrend(pts);
    const card = rateOfChange(pts)!;
    expect(trend).toMatchObject({ mgCm3PerYear: card.mgCm3PerYear, pctPerYear: card.percentPerYear, scans: 3 });
    expect(change).toEqual(card.change);
    expect(change!.verdict).toBe('within-measurement-error');
  });

  it('queries: declining must be positive', () => {
    expect(() => parseCohortQuery({ decliningPctPerYear: -3 })).toThrow(/decliningPctPerYear/);
    expect(() => parseCohortQuery({ category: 'low' })).toThrow(/category/);
    expect(() => parseCohortQuery({ extra: 1 })).toThrow();
  });
});

function row(patient: string, vbmd: number | null): CohortRow {
  return {
    patient,
    latestEffective: '2024-01-01',
    latestVbmdMgCm3: vbmd,
    category: vbmd === null ? 'indeterminate' : vbmd > 120 ? 'normal' : vbmd >= 80 ? 'osteopenia' : 'osteoporosis',
    basis: 'lumbar',
    status: 'final',
    uncalibrated: false,
    studyUid: null,
    observationId: null,
    scans: 1,
    measuredScans: vbmd === null ? 0 : 1,
    latestScanIndeterminate: false,
    trend: null,
    change: null,
    therapy: 'none',
    therapyClasses: [],
    activeTherapy: null,
  };
}
const summary = (n: number): CohortSummary => ({
  source: 'ndjson:/tmp/x<y>',
  valueSet: 'vs',
  query: { untreated: true, category: 'osteoporosis' },
  asOf: '2025-06-01T00:00:00.000Z',
  patients: n,
  matched: n,
  byCategory: { osteoporosis: n, osteopenia: 0, normal: 0, indeterminate: 0 },
  matchedByCategory: { osteoporosis: n, osteopenia: 0, normal: 0, indeterminate: 0 },
  byMonth: [],
  resourcesRead: 0,
  scansRead: 0,
  therapyRecordsRead: 0,
  skipped: {} as CohortSummary['skipped'],
  elapsedMs: 0,
});

describe('outputs', () => {
  it('CSV quotes and defuses formulas', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField(null)).toBe('');
    const lines = [...cohortCsv([row('p1', 70.5)])].join('').split('\r\n');
    expect(lines[0]).toBe('patient_id,latest_date,vbmd_mg_cm3,category,basis,status,uncalibrated,scans,measured_scans,latest_scan_indeterminate,trend_pct_per_year,trend_mg_cm3_per_year,trend_span_years,change_pct,change_vs_lsc,therapy,therapy_classes,active_therapy,study_uid');
    expect(lines[1]).toBe('p1,2024-01-01,70.5,osteoporosis,lumbar,final,false,1,1,false,,,,,,none,,,');
  });

  it('Group is valid JSON with one member per row, references by id or identifier', () => {
    const g = JSON.parse([...cohortGroupJson([row('p1', 70), row('identifier:urn:mrn|9', 60)], summary(2))].join('')) as {
      resourceType: string;
      type: string;
      actual: boolean;
      quantity: number;
      name: string;
      member: Array<{ entity: { reference?: string; identifier?: { system: string; value: string } } }>;
    };
    expect(g).toMatchObject({ resourceType: 'Group', type: 'person', actual: true, quantity: 2 });
    expect(g.name).toContain('latest vBMD category osteoporosis; no active bone-targeted therapy');
    expect(g.member[0].entity.reference).toBe('Patient/p1');
    expect(g.member[1].entity.identifier).toEqual({ system: 'urn:mrn', value: '9' });
    const empty = JSON.parse([...cohortGroupJson([], summary(0))].join('')) as { member: unknown[] };
    expect(empty.member).toEqual([]);
  });

  it('histogram bins by 10 mg/cm3 with end bins for outliers; SVG escapes text', () => {
    const h = histogramOf([-5, 0, 79.9, 80, 119, 120, 400]);
    expect(h.counts[0]).toBe(2);
    expect(h.counts[7]).toBe(1);
    expect(h.counts[8]).toBe(1);
    expect(h.counts[11]).toBe(1);
    expect(h.counts[12]).toBe(1);
    expect(h.counts[24]).toBe(1);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(7);
    const svg = cohortHistogramSvg([row('a', 70), row('b', 75), row('c', null)], summary(3));
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('(n=2)');
    expect(svg).toContain('x&lt;y&gt;');
    expect(svg).not.toContain('x<y>');
    // 120 is osteopenia although it opens the [120, 130) bin: that bar is drawn in the osteopenia colour.
    const edge = cohortHistogramSvg([row('e', 120)], summary(1));
    expect(edge).toContain('120-130 mg/cm3: 1 osteopenia');
    expect(edge).not.toContain('normal</title>');
  });
});

describe('cohort credentials', () => {
  it('never sends the EHR token to another server; COHORT_BEARER_TOKEN wins', async () => {
    const cfg = { FHIR_BASE_URL: 'https://ehr.example/fhir', FHIR_BEARER_TOKEN: 'ehr-token', COHORT_BEARER_TOKEN: undefined };
    expect(await cohortAuthFromConfig(cfg, 'https://ehr.example/fhir/Group/1')!.token()).toBe('ehr-token');
    expect(cohortAuthFromConfig(cfg, 'https://other.example/fhir')).toBeUndefined();
    expect(cohortAuthFromConfig(cfg, 'https://ehr.example/other-fhir')).toBeUndefined();
    expect(await cohortAuthFromConfig({ ...cfg, COHORT_BEARER_TOKEN: 'c' }, 'https://other.example/fhir')!.token()).toBe('c');
    let invalidated = 0;
    const bs = { token: async () => 'bs-token', invalidate: () => void invalidated++ };
    const auth = cohortAuthFromConfig(cfg, 'https://ehr.example/fhir', bs)!;
    expect(await auth.token()).toBe('bs-token');
    auth.invalidate();
    expect(invalidated).toBe(1);
  });
});

describe('ordering', () => {
  const arraySource = (resources: unknown[]): ResourceSource => ({
    label: 'memory',
    async *batches() {
      yield resources;
    },
  });
  it('lists the lowest vBMD first, but the fastest decline first with --declining', async () => {
    const src = arraySource([
      vbmdObservation('fast', '2022-01-01', 150),
      vbmdObservation('fast', '2024-01-01', 120),
      vbmdObservation('slow', '2023-01-01', 80),
      vbmdObservation('slow', '2024-01-01', 76),
    ]);
    expect((await runCohort(src, {})).rows.map((r) => r.patient)).toEqual(['slow', 'fast']);
    // 'slow' loses 5%/year, but 80 -> 76 (-5%) is within measurement error (LSC 10%): not a decline.
    expect((await runCohort(src, { decliningPctPerYear: 3 })).rows.map((r) => r.patient)).toEqual(['fast']);
    const rows = (await runCohort(src, {})).rows;
    expect(rows.map((r) => r.change?.verdict)).toEqual(['within-measurement-error', 'decline']);
  });
});
