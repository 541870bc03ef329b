import type { MedicationRequest, MedicationStatement, Observation } from 'fhir/r4.js';
import {
  DATA_ABSENT_REASON_SYSTEM,
  DICOM_UID_SYSTEM,
  IMAGING_CATEGORY,
  INTERPRETATION_BY_CATEGORY,
  UCUM_MG_PER_CM3,
  VBMD_BASIS_CODES,
  VBMD_LEVEL_CODE,
  VBMD_SUMMARY_CODE,
} from '../../src/fhir/codes.js';

/**
 * Generated patients with known answers for every cohort query. Observations follow the layout of
 * src/fhir/observation.ts (summary code, UCUM mg/cm3, interpretation, method basis, per-level components,
 * dataAbsentReason when indeterminate). Expected values below are written out by hand from the ACR
 * thresholds and the trend definition, not computed by the code under test.
 */
export const AS_OF = '2025-06-01';

let seq = 0;
export function vbmdObservation(
  patient: string,
  effective: string,
  value: number | null,
  opts: { status?: Observation['status']; basis?: keyof typeof VBMD_BASIS_CODES } = {},
): Observation {
  seq++;
  const uid = `1.2.826.0.1.3680043.10.1${seq}`;
  const cat = value === null ? null : value > 120 ? 'normal' : value >= 80 ? 'osteopenia' : 'osteoporosis';
  const basis = opts.basis ?? (value === null ? 'none' : 'lumbar');
  return {
    resourceType: 'Observation',
    id: `obs-${seq}`,
    identifier: [{ system: 'https://vbmd.org/fhir/sid/analysis', value: `${uid}|s|m-${seq}` }],
    status: opts.status ?? 'final',
    category: [{ coding: [{ ...IMAGING_CATEGORY }] }],
    code: { coding: [{ ...VBMD_SUMMARY_CODE }], text: 'Vertebral trabecular vBMD (QCT from CT)' },
    subject: { reference: `Patient/${patient}`, type: 'Patient' },
    effectiveDateTime: effective,
    issued: '2025-05-01T00:00:00Z',
    ...(value !== null && cat
      ? { valueQuantity: { value, ...UCUM_MG_PER_CM3 }, interpretation: [{ coding: [{ ...INTERPRETATION_BY_CATEGORY[cat] }], text: cat }] }
      : { dataAbsentReason: { coding: [{ system: DATA_ABSENT_REASON_SYSTEM, code: 'unknown' }], text: 'Indeterminate' } }),
    method: { coding: [{ ...VBMD_BASIS_CODES[basis] }] },
    partOf: [{ type: 'ImagingStudy', identifier: { system: DICOM_UID_SYSTEM, value: `urn:oid:${uid}` } }],
    component: [
      {
        code: { coding: [{ ...VBMD_LEVEL_CODE }, { system: 'http://snomed.info/sct', code: '66794005' }], text: 'L1' },
        ...(value !== null ? { valueQuantity: { value: value - 2, ...UCUM_MG_PER_CM3 } } : { dataAbsentReason: { text: 'Excluded: lesion' } }),
      },
      {
        code: { coding: [{ ...VBMD_LEVEL_CODE }, { system: 'http://snomed.info/sct', code: '14293000' }], text: 'L2' },
        ...(value !== null ? { valueQuantity: { value: value + 2, ...UCUM_MG_PER_CM3 } } : { dataAbsentReason: { text: 'Excluded: fracture' } }),
      },
    ],
  };
}

export function medicationRequest(
  patient: string,
  status: MedicationRequest['status'],
  medication: MedicationRequest['medicationCodeableConcept'],
  validityEnd?: string,
): MedicationRequest {
  seq++;
  return {
    resourceType: 'MedicationRequest',
    id: `mr-${seq}`,
    status,
    intent: 'order',
    subject: { reference: `Patient/${patient}` },
    medicationCodeableConcept: medication,
    authoredOn: '2024-01-01',
    ...(validityEnd ? { dispenseRequest: { validityPeriod: { start: '2023-01-01', end: validityEnd } } } : {}),
  };
}

export function medicationStatement(
  patient: string,
  status: MedicationStatement['status'],
  medication: MedicationStatement['medicationCodeableConcept'],
  periodEnd?: string,
): MedicationStatement {
  seq++;
  return {
    resourceType: 'MedicationStatement',
    id: `ms-${seq}`,
    status,
    subject: { reference: `Patient/${patient}` },
    medicationCodeableConcept: medication,
    effectivePeriod: { start: '2023-01-01', ...(periodEnd ? { end: periodEnd } : {}) },
  };
}

const RX = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const ATC = 'http://www.whocc.no/atc';

export function cohortFixture(): { observations: Observation[]; requests: MedicationRequest[]; statements: MedicationStatement[]; other: Observation[] } {
  seq = 0;
  const o = vbmdObservation;
  const observations: Observation[] = [
    // Osteoporosis, untreated, declining: 95 -> 85 -> 75 a year apart.
    o('op-untreated-declining', '2022-01-10', 95),
    o('op-untreated-declining', '2024-01-10', 75),
    o('op-untreated-declining', '2023-01-10T00:00:00Z', 85),
    // Osteoporosis on alendronate (RxNorm ingredient code), stable.
    o('op-treated-stable', '2023-01-15', 70),
    o('op-treated-stable', '2023-07-15', 71),
    o('op-treated-stable', '2024-07-15', 70),
    // Osteoporosis on denosumab recorded by a product display only (Prolia) in a MedicationStatement.
    o('op-denosumab-statement', '2024-03-01', 60, { basis: 'thoracic-extrapolated' }),
    // Osteoporosis with only a completed zoledronic acid order (ATC): untreated, therapy 'past'.
    o('op-past-zoledronate', '2024-05-05', 78),
    // Osteoporosis, MedicationStatement 'active' but its period ended before AS_OF: untreated, 'past'.
    o('op-ended-statement', '2024-02-02', 50),
    // Osteoporosis on teriparatide (anabolic, ATC): treated.
    o('op-anabolic', '2024-06-06', 65),
    // Osteoporosis with an unrelated active drug: untreated, therapy 'none'.
    o('op-other-drug', '2024-04-04', 72),
    // Osteopenia, declining 130 -> 115 over two years.
    o('penia-declining', '2021-06-01', 130),
    o('penia-declining', '2023-06-01', 115),
    // Osteopenia, two scans three months apart: no trend (span < 6 months).
    o('penia-short-span', '2024-01-01', 110),
    o('penia-short-span', '2024-04-01', 100),
    // Normal, stable.
    o('normal-stable', '2022-03-03', 150),
    o('normal-stable', '2024-03-03', 152),
    // Only an indeterminate scan.
    o('indeterminate-only', '2024-08-08', null),
    // Latest scan indeterminate; latest measured value 85 (osteopenia).
    o('latest-indeterminate', '2023-02-02', 85),
    o('latest-indeterminate', '2024-02-02', null),
    // A mistaken result (entered-in-error, 40) must not count; the valid one is 100.
    o('entered-in-error', '2024-09-09', 40, { status: 'entered-in-error' }),
    o('entered-in-error', '2024-01-09', 100),
    // Window: osteoporosis in 2019, normal in 2024.
    o('window', '2019-01-01', 60),
    o('window', '2024-09-01', 130),
  ];
  const requests: MedicationRequest[] = [
    medicationRequest('op-treated-stable', 'active', { coding: [{ system: RX, code: '46041', display: 'alendronate' }] }),
    medicationRequest('op-past-zoledronate', 'completed', { coding: [{ system: ATC, code: 'M05BA08' }] }),
    medicationRequest('op-anabolic', 'active', { coding: [{ system: ATC, code: 'H05AA02' }] }, '2026-01-01'),
    medicationRequest('op-other-drug', 'active', { coding: [{ system: RX, code: '6809', display: 'metformin' }], text: 'metformin 500 MG' }),
    // Denosumab for a patient not in the vBMD cohort: never a row.
    medicationRequest('no-scans', 'active', { coding: [{ system: RX, code: '993449' }] }),
  ];
  const statements: MedicationStatement[] = [
    medicationStatement('op-denosumab-statement', 'active', { coding: [{ system: RX, code: '000000', display: 'Prolia 60 MG/ML Prefilled Syringe' }] }),
    medicationStatement('op-ended-statement', 'active', { coding: [{ system: RX, code: '46041' }] }, '2024-12-31'),
  ];
  // A lab Observation that is not vBMD.
  const other: Observation[] = [
    {
      resourceType: 'Observation',
      id: 'hb',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] },
      subject: { reference: 'Patient/op-other-drug' },
      effectiveDateTime: '2024-01-01',
      valueQuantity: { value: 13, unit: 'g/dL' },
    },
  ];
  return { observations, requests, statements, other };
}

const YEAR_DAYS = 365.25;
/** Expected %/year of an exactly linear series: slope over the fitted (= measured) first value. */
export function linearPctPerYear(first: number, last: number, days: number): number {
  return (((last - first) / (days / YEAR_DAYS)) / first) * 100;
}

/** Known answers for the fixture with no window (as of AS_OF). */
export const EXPECTED = {
  patients: 14,
  byCategory: { osteoporosis: 7, osteopenia: 4, normal: 2, indeterminate: 1 },
  latest: {
    'op-untreated-declining': { vbmd: 75, category: 'osteoporosis', therapy: 'none' },
    'op-treated-stable': { vbmd: 70, category: 'osteoporosis', therapy: 'active' },
    'op-denosumab-statement': { vbmd: 60, category: 'osteoporosis', therapy: 'active' },
    'op-past-zoledronate': { vbmd: 78, category: 'osteoporosis', therapy: 'past' },
    'op-ended-statement': { vbmd: 50, category: 'osteoporosis', therapy: 'past' },
    'op-anabolic': { vbmd: 65, category: 'osteoporosis', therapy: 'active' },
    'op-other-drug': { vbmd: 72, category: 'osteoporosis', therapy: 'none' },
    'penia-declining': { vbmd: 115, category: 'osteopenia', therapy: 'none' },
    'penia-short-span': { vbmd: 100, category: 'osteopenia', therapy: 'none' },
    'normal-stable': { vbmd: 152, category: 'normal', therapy: 'none' },
    'indeterminate-only': { vbmd: null, category: 'indeterminate', therapy: 'none' },
    'latest-indeterminate': { vbmd: 85, category: 'osteopenia', therapy: 'none' },
    'entered-in-error': { vbmd: 100, category: 'osteopenia', therapy: 'none' },
    window: { vbmd: 130, category: 'normal', therapy: 'none' },
  },
  /** --category osteoporosis --untreated, lowest vBMD first. */
  osteoporosisUntreated: ['op-ended-statement', 'op-other-drug', 'op-untreated-declining', 'op-past-zoledronate'],
  /** 2022-01-10 -> 2024-01-10 is 730 days; 95 -> 75. */
  decliningPct: linearPctPerYear(95, 75, 730),
  /** 2021-06-01 -> 2023-06-01 is 730 days; 130 -> 115. */
  peniaDecliningPct: linearPctPerYear(130, 115, 730),
  /** --declining 5: both decliners (-10.5 and -5.8 %/year); --declining 6: only the first. */
  declining5: ['op-untreated-declining', 'penia-declining'],
  declining6: ['op-untreated-declining'],
  /** --since 2019-01-01 --until 2020-12-31: only 'window' (60, osteoporosis). */
  window2019: [{ patient: 'window', vbmd: 60, category: 'osteoporosis' }],
  /** Scans by month (entered-in-error excluded): 2024-01 has three (op-untreated-declining 75, penia-short-span 110, entered-in-error 100). */
  month202401: { month: '2024-01', scans: 3, osteoporosis: 1, osteopenia: 2, normal: 0, indeterminate: 0 },
  totalScans: 23,
} as const;
