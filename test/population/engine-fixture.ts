import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MedicationRequest, MedicationStatement, Observation } from 'fhir/r4.js';
import { ANALYSIS_EXT, CALIBRATION_METHOD_CODES, DICOM_UID_SYSTEM, VBMD_ANALYSIS_EXTENSION } from '../../src/fhir/codes.js';
import { cohortFixture, medicationRequest, medicationStatement, vbmdObservation } from './fixtures.js';
import { toNdjson } from './write-ndjson.js';

/**
 * The shared fixture both cohort engines (streaming and DuckDB) must read to the same rows: cohortFixture()
 * plus the cases the result reader decides (src/fhir/result-reader.ts) - contained Medications, references
 * that cannot be followed, entered-in-error results and prescriptions, same-day re-analyses of one study
 * (partOf or derivedFrom, with or without urn:oid:, issued later or tied), the least-significant-change
 * decline rule, UCUM unit conversions, statuses and calibration, partial and zone-less times, patient
 * reference forms, resources of the wrong shape or type. ENGINE_EXPECTED holds answers written out by hand.
 */
const RX = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const ATC = 'http://www.whocc.no/atc';
const UCUM = 'http://unitsofmeasure.org';

type Obs = Observation & Record<string, unknown>;
const o = (patient: string, effective: string, value: number | null, over: Partial<Obs> = {}): Obs => ({ ...vbmdObservation(patient, effective, value), ...over });
const study = (uid: string, via: 'partOf' | 'derivedFrom' = 'partOf'): Partial<Obs> => ({
  partOf: undefined,
  [via]: [{ identifier: { system: DICOM_UID_SYSTEM, value: uid } }],
});
const qty = (value: number, unit: string, code?: string, system?: string): Partial<Obs> => ({
  valueQuantity: { value, unit, ...(code ? { code } : {}), ...(system ? { system } : {}) },
});
const calibration = (method: keyof typeof CALIBRATION_METHOD_CODES, traceable: boolean): Partial<Obs> => ({
  extension: [
    {
      url: VBMD_ANALYSIS_EXTENSION,
      extension: [
        { url: ANALYSIS_EXT.calibrationMethod, valueCoding: { ...CALIBRATION_METHOD_CODES[method] } },
        { url: ANALYSIS_EXT.calibrationTraceable, valueBoolean: traceable },
      ],
    },
  ],
});
const withContained = <T extends MedicationRequest | MedicationStatement>(m: T, ref: string, contained: object[]): T => {
  const { medicationCodeableConcept: _drop, ...rest } = m;
  return { ...rest, medicationReference: { reference: ref }, contained } as T;
};

function extraObservations(): Obs[] {
  const reanalysed = 'urn:oid:1.2.826.0.1.3680043.10.900';
  return [
    o('e-contained-treated', '2024-05-01', 70),
    o('e-contained-statement', '2024-05-02', 60),
    o('e-unresolved', '2024-05-03', 65),
    o('e-contained-missing', '2024-05-04', 66),
    o('e-eie', '2024-01-01', 90),
    o('e-eie', '2024-06-01', 50, { status: 'entered-in-error' }),
    o('e-eie-med', '2024-05-05', 70),
    // Same-day re-analysis, the newer result first in the file: 85 issued at noon, 78 issued the next day.
    o('e-reanalysis', '2024-03-01T10:00:00Z', 78, { ...study(reanalysed), issued: '2024-03-02T09:00:00Z' }),
    o('e-reanalysis', '2024-03-01T10:00:00Z', 85, { ...study(reanalysed), issued: '2024-03-01T12:00:00Z' }),
    o('e-reanalysis', '2023-03-01', 95),
    // Same study, same issued time: the lower value (the cautious reading).
    o('e-reanalysis-tie', '2024-04-01', 81, { ...study('1.2.901'), issued: '2024-04-02T00:00:00Z' }),
    o('e-reanalysis-tie', '2024-04-01', 79, { ...study('1.2.901'), issued: '2024-04-02T00:00:00Z' }),
    // The study named by derivedFrom only; with and without urn:oid:.
    o('e-reanalysis-derived', '2024-04-03', 70, { ...study('urn:oid:1.2.902', 'derivedFrom'), issued: '2024-04-03T12:00:00Z' }),
    o('e-reanalysis-derived', '2024-04-03', 100, { ...study('1.2.902', 'derivedFrom'), issued: '2024-04-05T00:00:00+02:00' }),
    o('e-reanalysis-prefix', '2024-04-04', 60, { ...study('urn:oid:1.2.903'), issued: '2024-04-05T00:00:00Z' }),
    o('e-reanalysis-prefix', '2024-04-04', 65, { ...study('1.2.903'), issued: '2024-04-04T00:00:00Z' }),
    // Least significant change 9.97% (2.77 x 3.6%): a real decline, a fast slope within error, a gain.
    o('e-lsc-decline', '2024-03-01T00:00:00Z', 100),
    o('e-lsc-decline', '2025-03-01T00:00:00Z', 88),
    o('e-lsc-within', '2024-08-01T00:00:00Z', 100),
    o('e-lsc-within', '2025-03-01T00:00:00Z', 92),
    o('e-lsc-gain', '2024-03-01T00:00:00Z', 80),
    o('e-lsc-gain', '2025-03-01T00:00:00Z', 90),
    // The rate is the card's (src/trend/rate-of-change.ts): least squares over the 3 years up to the latest scan.
    // Stable at 100 for years, then losing ~6 %/year (100 -> 83 since 2022-06): a whole-series fit read -0.8
    // %/year and missed it. The reverse: 150 -> 100 by 2021-06, stable since: a whole-series fit read -4.1 %/year
    // with a decline beyond the least significant change. No scan in 2019-2020 (the window2019 query).
    ...[2011, 2012, 2013, 2014, 2015, 2016, 2017, 2018, 2021].map((y) => o('e-recent-decline', `${y}-03-01`, 100)),
    o('e-recent-decline', '2022-06-01', 100),
    o('e-recent-decline', '2023-06-01', 94),
    o('e-recent-decline', '2024-06-01', 88),
    o('e-recent-decline', '2025-03-01', 83),
    o('e-old-decline', '2017-01-01', 150),
    o('e-old-decline', '2018-01-01', 125),
    o('e-old-decline', '2018-06-01', 110),
    o('e-old-decline', '2021-06-01', 100),
    o('e-old-decline', '2022-06-01', 100),
    o('e-old-decline', '2023-06-01', 100),
    o('e-old-decline', '2024-06-01', 101),
    // Units.
    o('e-g-cm3', '2024-02-01', 0, qty(0.0741, 'g/cm3', 'g/cm3', UCUM)),
    o('e-kg-m3', '2024-02-01', 0, qty(130, 'kg/m3', 'kg/m3', UCUM)),
    o('e-display-unit', '2024-02-01', 0, qty(74.1, 'mg/cm³')),
    o('e-bad-unit', '2024-02-01', 0, qty(0.8, 'g/cm2', 'g/cm2', UCUM)),
    o('e-not-ucum', '2024-02-01', 0, qty(74.1, 'mg/cm3', 'mg/cm3', 'http://example.org/units')),
    // Statuses and calibration.
    o('e-amended', '2024-02-02', 90, { status: 'amended' }),
    o('e-corrected', '2024-02-02', 125, { status: 'corrected' }),
    o('e-preliminary', '2024-02-02', 95, { status: 'preliminary' }),
    o('e-nominal', '2024-02-02', 95, { status: 'amended', ...calibration('nominal', false) }),
    o('e-calibrated', '2024-02-02', 95, calibration('phantom', true)),
    o('e-cancelled', '2024-02-02', 60, { status: 'cancelled' }),
    o('e-draft', '2024-02-02', 60, { status: 'draft' as Observation['status'] }),
    // Times.
    o('e-instant', '', 70, { effectiveDateTime: undefined, effectiveInstant: '2024-02-02T10:00:00.123+01:00' }),
    o('e-period', '', 71, { effectiveDateTime: undefined, effectivePeriod: { start: '2024-02-03' } }),
    o('e-partial', '2023', 100),
    o('e-partial', '2024-06', 90),
    o('e-no-seconds', '2024-03-01T10:00Z', 100),
    o('e-no-seconds', '2024-09-01T10:00+02:00', 90),
    o('e-zoneless', '2024-03-01T10:00:00', 70),
    o('e-no-time', '', 70, { effectiveDateTime: undefined }),
    // Patient references.
    o('x', '2024-07-01', 75, { subject: { identifier: { system: 'urn:mrn', value: '77' } } }),
    o('x', '2024-07-01', 76, { subject: { reference: 'https://ehr.example/fhir/Patient/e-absolute/_history/2' } }),
    o('x', '2024-07-01', 77, { subject: { reference: 'urn:uuid:5f0e2a8c-1111-4c3b-9d55-000000000001' } }),
    o('x', '2024-07-01', 78, { subject: undefined }),
    // Wrong shape: no status, no code.
    o('e-no-status', '2024-07-02', 70, { status: undefined }),
    o('e-no-code', '2024-07-02', 70, { code: undefined }),
    // ACR boundaries.
    o('e-120', '2024-07-03', 120),
    o('e-120.1', '2024-07-03', 120.1),
    o('e-80', '2024-07-03', 80),
    o('e-79.9', '2024-07-03', 79.9),
    // Indeterminate.
    o('e-newest-indeterminate', '2024-03-01', 88),
    o('e-newest-indeterminate', '2025-03-01', null),
    o('e-no-value', '2024-03-01', 0, { valueQuantity: undefined }),
    // No study UID, same time: both count, the lower is the latest.
    o('e-no-study-tie', '2024-08-01T08:00:00Z', 75, { partOf: undefined }),
    o('e-no-study-tie', '2024-08-01T08:00:00Z', 70, { partOf: undefined }),
    // Medication cases.
    o('e-not-taken', '2024-05-06', 70),
    o('e-ended-date', '2024-05-06', 70),
    o('e-ends-as-of', '2024-05-06', 70),
    o('e-ended-time', '2024-05-06', 70),
    o('e-second-coding', '2024-05-06', 70),
    o('e-two-drugs', '2024-05-06', 70),
    o('e-text-only', '2024-05-06', 70),
    // Only in 2010: outside a window from 2019.
    o('e-old', '2010-05-06', 70),
  ];
}

function extraRequests(): MedicationRequest[] {
  const aln = { coding: [{ system: RX, code: '46041', display: 'alendronate' }] };
  return [
    withContained(medicationRequest('e-contained-treated', 'active', undefined), '#m', [{ resourceType: 'Medication', id: 'm', code: aln }]),
    { ...withContained(medicationRequest('e-unresolved', 'active', undefined), 'Medication/123', []), contained: undefined },
    withContained(medicationRequest('e-contained-missing', 'active', undefined), '#nope', [{ resourceType: 'Medication', id: 'other', code: aln }]),
    medicationRequest('e-eie-med', 'entered-in-error', aln),
    medicationRequest('e-ended-date', 'active', aln, '2025-05-31'),
    medicationRequest('e-ends-as-of', 'active', aln, '2025-06-01'),
    medicationRequest('e-ended-time', 'active', aln, '2025-05-31T23:00:00Z'),
    medicationRequest('e-second-coding', 'active', {
      coding: [
        { system: RX, code: '6809', display: 'metformin' },
        { system: 'http://example.org/drugs', code: 'F70', display: 'Fosamax (alendronate) 70 MG' },
      ],
    }),
    medicationRequest('e-two-drugs', 'active', { coding: [{ system: ATC, code: 'H05AA02' }] }),
    medicationRequest('e-text-only', 'active', { text: 'Zoledronic acid 5 mg infusion' }),
  ];
}

function extraStatements(): MedicationStatement[] {
  return [
    withContained(medicationStatement('e-contained-statement', 'active', undefined), '#x', [
      { resourceType: 'Medication', id: 'x', code: { text: 'Prolia 60 mg' } },
    ]),
    medicationStatement('e-not-taken', 'not-taken', { coding: [{ system: RX, code: '46041' }] }),
    medicationStatement('e-two-drugs', 'active', { coding: [{ system: ATC, code: 'M05BX04' }] }),
  ];
}

/** The fixture as NDJSON: one file per type, and an unnamed file of resources the cohort does not read. */
export async function writeEngineFixture(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vbmd-engines-'));
  const base = cohortFixture();
  await writeFile(join(dir, 'Observation.ndjson'), toNdjson([...base.observations, ...base.other, ...extraObservations()]));
  await writeFile(join(dir, 'MedicationRequest.ndjson'), toNdjson([...base.requests, ...extraRequests()]));
  await writeFile(join(dir, 'MedicationStatement.ndjson'), toNdjson([...base.statements, ...extraStatements()]));
  await writeFile(
    join(dir, 'extra.ndjson'),
    toNdjson([
      { resourceType: 'Patient', id: 'e-contained-treated' },
      { resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/e-old' } },
    ]),
  );
  return dir;
}

/** Hand-written answers (AS_OF 2025-06-01) for the extra cases. */
export const ENGINE_EXPECTED = {
  latest: {
    'e-contained-treated': { vbmd: 70, therapy: 'active', activeTherapy: 'alendronate' },
    'e-contained-statement': { vbmd: 60, therapy: 'active', activeTherapy: 'denosumab' },
    'e-unresolved': { vbmd: 65, therapy: 'none', activeTherapy: null },
    'e-contained-missing': { vbmd: 66, therapy: 'none', activeTherapy: null },
    'e-eie': { vbmd: 90, therapy: 'none', activeTherapy: null },
    'e-eie-med': { vbmd: 70, therapy: 'none', activeTherapy: null },
    'e-reanalysis': { vbmd: 78, therapy: 'none', activeTherapy: null },
    'e-reanalysis-tie': { vbmd: 79, therapy: 'none', activeTherapy: null },
    'e-reanalysis-derived': { vbmd: 100, therapy: 'none', activeTherapy: null },
    'e-reanalysis-prefix': { vbmd: 60, therapy: 'none', activeTherapy: null },
    'e-g-cm3': { vbmd: 74.1, therapy: 'none', activeTherapy: null },
    'e-kg-m3': { vbmd: 130, therapy: 'none', activeTherapy: null },
    'e-display-unit': { vbmd: 74.1, therapy: 'none', activeTherapy: null },
    'e-instant': { vbmd: 70, therapy: 'none', activeTherapy: null },
    'e-period': { vbmd: 71, therapy: 'none', activeTherapy: null },
    'e-partial': { vbmd: 90, therapy: 'none', activeTherapy: null },
    'e-no-seconds': { vbmd: 90, therapy: 'none', activeTherapy: null },
    'identifier:urn:mrn|77': { vbmd: 75, therapy: 'none', activeTherapy: null },
    'e-absolute': { vbmd: 76, therapy: 'none', activeTherapy: null },
    'urn:uuid:5f0e2a8c-1111-4c3b-9d55-000000000001': { vbmd: 77, therapy: 'none', activeTherapy: null },
    'e-newest-indeterminate': { vbmd: 88, therapy: 'none', activeTherapy: null },
    'e-no-value': { vbmd: null, therapy: 'none', activeTherapy: null },
    'e-no-study-tie': { vbmd: 70, therapy: 'none', activeTherapy: null },
    'e-not-taken': { vbmd: 70, therapy: 'none', activeTherapy: null },
    'e-ended-date': { vbmd: 70, therapy: 'past', activeTherapy: null },
    'e-ends-as-of': { vbmd: 70, therapy: 'active', activeTherapy: 'alendronate' },
    'e-ended-time': { vbmd: 70, therapy: 'past', activeTherapy: null },
    'e-second-coding': { vbmd: 70, therapy: 'active', activeTherapy: 'alendronate' },
    'e-two-drugs': { vbmd: 70, therapy: 'active', activeTherapy: 'denosumab' },
    'e-text-only': { vbmd: 70, therapy: 'active', activeTherapy: 'zoledronic acid' },
  },
  /** Patients with no row: every result refused. */
  absent: ['e-bad-unit', 'e-not-ucum', 'e-cancelled', 'e-draft', 'e-zoneless', 'e-no-time', 'e-no-status', 'e-no-code', 'x'],
  uncalibrated: { 'e-preliminary': true, 'e-nominal': true, 'e-calibrated': false, 'e-amended': false },
  categories: { 'e-120': 'osteopenia', 'e-120.1': 'normal', 'e-80': 'osteopenia', 'e-79.9': 'osteoporosis' },
  scans: { 'e-reanalysis': 2, 'e-reanalysis-tie': 1, 'e-reanalysis-derived': 1, 'e-reanalysis-prefix': 1, 'e-no-study-tie': 2, 'e-eie': 1 },
  /** cohortFixture's one, the two extra Observations, the extra MedicationRequest. */
  skipped: {
    'entered-in-error': 3,
    superseded: 4,
    'unresolved-medication-reference': 2,
    unit: 2,
    'not-a-result': 1,
    // draft status, no status, no code.
    invalid: 3,
    'no-effective-time': 2,
    'no-subject': 1,
    'other-resource-type': 2,
  },
  /** --declining 5: a fast slope counts only with a change beyond the least significant change, both over the 3
   * years up to the latest scan (the card's and the app's rule). */
  declining5Includes: ['e-lsc-decline', 'e-recent-decline'],
  declining5Excludes: ['e-lsc-within', 'e-lsc-gain', 'e-old-decline'],
  /** --declining 3: a loss before the 3 years up to the latest scan does not count. */
  declining3Excludes: ['e-old-decline'],
  verdicts: {
    'e-lsc-decline': 'decline',
    'e-lsc-within': 'within-measurement-error',
    'e-lsc-gain': 'gain',
    'e-recent-decline': 'decline',
    'e-old-decline': 'within-measurement-error',
  },
} as const;
