import { describe, expect, it } from 'vitest';
import type { Observation, RiskAssessment } from 'fhir/r4.js';
import { VBMD_BASIS_CODES, VBMD_LEVEL_CODE, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';
import type { FractureFinding } from '../../src/fhir/finding-reader.js';
import { compileTherapyValueSet, defaultTherapyValueSet } from '../../src/population/therapy-value-set.js';
import { readCareContext } from '../../cds-hooks/care-context.js';
import type { CareContext } from '../../cds-hooks/care-context.js';
import { loadCtValueSet, buildCtValueSet, parseCtValueSet } from '../../cds-hooks/ct-value-set.js';
import { matchCtOrders, orderCards } from '../../cds-hooks/order-card.js';
import { DXA_ORDER_CODE, patientViewCards } from '../../cds-hooks/patient-view-card.js';
import type { PatientViewInputs } from '../../cds-hooks/patient-view-card.js';
import { readOsteoporosisRisk, readVbmdResults } from '../../cds-hooks/vbmd-results.js';
import { declineRate, MS_PER_YEAR } from '../../cds-hooks/decline-rate.js';
import { fillTemplate } from '../../cds-hooks/prefetch.js';

const CPT = 'http://www.ama-assn.org/go/cpt';

function obs(id: string, date: string, value: number, opts: { basis?: keyof typeof VBMD_BASIS_CODES; status?: Observation['status']; unit?: string; study?: string; issued?: string } = {}): Observation {
  return {
    resourceType: 'Observation',
    id,
    status: opts.status ?? 'final',
    code: { coding: [{ ...VBMD_SUMMARY_CODE }] },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: date,
    issued: opts.issued ?? date,
    valueQuantity: { value, unit: opts.unit ?? 'mg/cm3', system: 'http://unitsofmeasure.org', code: opts.unit ?? 'mg/cm3' },
    method: { coding: [{ ...VBMD_BASIS_CODES[opts.basis ?? 'lumbar'] }] },
    bodySite: { text: opts.basis === 'thoracic-extrapolated' ? 'T11-T12' : 'L1-L2' },
    ...(opts.study ? { derivedFrom: [{ identifier: { system: 'urn:dicom:uid', value: `urn:oid:${opts.study}` } }] } : {}),
    component: [
      { code: { coding: [{ ...VBMD_LEVEL_CODE }], text: 'L1' }, valueQuantity: { value: value - 2, unit: 'mg/cm3', code: 'mg/cm3' } },
      { code: { coding: [{ ...VBMD_LEVEL_CODE }], text: 'L2' }, valueQuantity: { value: value + 2, unit: 'mg/cm3', code: 'mg/cm3' } },
      { code: { coding: [{ ...VBMD_LEVEL_CODE }], text: 'L3' }, dataAbsentReason: { text: 'Excluded: fracture (height loss 31%)' } },
    ],
  };
}

let n = 0;
const opts = { patientId: 'p1', declinePctPerYear: 5, smartLaunchUrl: 'https://vbmd.example.org/smart/launch.html', newUuid: () => `uuid-${++n}` };
const NO_CARE: CareContext = { therapy: null, recentDxaMs: null, dxaOrdered: false };
const cardsFor = (results: PatientViewInputs['results'], extra: Partial<PatientViewInputs> = {}) => patientViewCards({ results, care: NO_CARE, ...extra }, opts);

describe('reading vBMD results', () => {
  it('keeps only usable summary Observations in mg/cm3, newest first, one per scan', () => {
    const resources = [
      obs('a', '2024-01-10T10:00:00Z', 100),
      obs('b', '2025-01-10T10:00:00Z', 90, { study: '1.2.3', issued: '2025-01-11T00:00:00Z' }),
      obs('b2', '2025-01-10T10:00:00Z', 88, { study: '1.2.3', issued: '2025-06-01T00:00:00Z' }), // a second result of the same study, issued later
      obs('c', '2025-03-01T10:00:00Z', 50, { status: 'entered-in-error' }),
      obs('d', '2025-04-01T10:00:00Z', 0.5, { unit: 'g/cm2' }),
      { resourceType: 'OperationOutcome' },
    ];
    const r = readVbmdResults(resources);
    expect(r.map((x) => x.observationId)).toEqual(['b2', 'a']);
    expect(r[0]!.category).toBe('osteopenia');
    expect(r[0]!.levels).toEqual([
      { level: 'L1', vbmdMgCm3: 86, included: true },
      { level: 'L2', vbmdMgCm3: 90, included: true },
      { level: 'L3', vbmdMgCm3: null, included: false, exclusionReason: 'fracture (height loss 31%)' },
    ]);
  });

  it('links the RiskAssessment by its basis Observation', () => {
    const ra: RiskAssessment = {
      resourceType: 'RiskAssessment',
      status: 'final',
      subject: { reference: 'Patient/p1' },
      basis: [{ reference: 'Observation/x' }],
      prediction: [
        {
          outcome: { coding: [{ system: 'http://snomed.info/sct', code: '64859006' }] },
          probabilityDecimal: 0.91,
          qualitativeRisk: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/risk-probability', code: 'high' }] },
        },
      ],
    };
    expect(readOsteoporosisRisk([ra], 'x')).toMatchObject({ qualitativeRisk: 'high', probability: 0.91 });
    expect(readOsteoporosisRisk([ra], 'other')).toBeUndefined();
    // A RiskAssessment withdrawn by an indeterminate re-analysis has no prediction: no risk.
    expect(readOsteoporosisRisk([{ ...ra, status: 'amended', prediction: undefined }], 'x')).toBeUndefined();
  });
});

describe('decline rate', () => {
  it('is the least-squares slope as % per year of the fitted baseline', () => {
    const t0 = Date.parse('2023-01-01T00:00:00Z');
    // 100 -> 90 -> 80 over two years: -10 mg/cm3/yr, -10 %/yr of 100.
    const pts = [0, 1, 2].map((y) => ({ effectiveMs: t0 + y * MS_PER_YEAR, vbmdMgCm3: 100 - 10 * y }));
    const r = declineRate(pts)!;
    expect(r.mgCm3PerYear).toBeCloseTo(-10, 6);
    expect(r.percentPerYear).toBeCloseTo(-10, 6);
    expect(r.results).toBe(3);
    expect(r.change).toMatchObject({ deltaMgCm3: -20, verdict: 'decline' });
  });

  it('gives no rate for results closer than six months or a single result', () => {
    const t0 = Date.parse('2023-01-01T00:00:00Z');
    expect(declineRate([{ effectiveMs: t0, vbmdMgCm3: 100 }])).toBeNull();
    expect(declineRate([{ effectiveMs: t0, vbmdMgCm3: 100 }, { effectiveMs: t0 + 0.3 * MS_PER_YEAR, vbmdMgCm3: 80 }])).toBeNull();
  });
});

describe('patient-view card', () => {
  it('warns for the osteoporosis range with value, levels, date, a smart link, a DXA suggestion and override reasons', () => {
    const cards = patientViewCards({ results: readVbmdResults([obs('o1', '2026-03-01T09:00:00Z', 72.4)]), risk: { qualitativeRisk: 'high', probability: 0.9 }, care: NO_CARE }, opts);
    expect(cards).toHaveLength(1);
    const c = cards[0]!;
    expect(c.indicator).toBe('warning');
    // The headline the SMART app shows too (src/fhir/result-words.ts resultHeadline).
    expect(c.summary).toBe('Osteoporosis range: vBMD 72.4 mg/cm3 on CT of 2026-03-01');
    expect(c.summary.length).toBeLessThan(140);
    expect(c.detail).toContain('**Vertebral trabecular vBMD 72.4 mg/cm3**');
    expect(c.detail).toContain('| L3 | fracture \\(height loss 31%\\) |');
    expect(c.detail).toContain('one result so far');
    expect(c.detail).toContain('model probability 0.90');
    expect(c.links).toEqual([
      { label: expect.any(String), url: opts.smartLaunchUrl, type: 'smart', appContext: JSON.stringify({ observation: 'Observation/o1' }) },
    ]);
    const action = c.suggestions![0]!.actions![0]!;
    expect(action.type).toBe('create');
    expect(action.resource).toMatchObject({
      resourceType: 'ServiceRequest',
      status: 'draft',
      code: { coding: [DXA_ORDER_CODE] },
      subject: { reference: 'Patient/p1' },
      reasonReference: [{ reference: 'Observation/o1' }],
    });
    expect(c.suggestions![0]!.isRecommended).toBe(true);
    expect(c.selectionBehavior).toBe('at-most-one');
    expect(c.overrideReasons!.length).toBeGreaterThan(0);
    for (const r of c.overrideReasons!) expect(r.display).toBeTruthy();
  });

  it('card and suggestion uuids are new for every card', () => {
    const results = readVbmdResults([obs('o1', '2026-03-01T09:00:00Z', 72.4)]);
    const a = patientViewCards({ results, care: NO_CARE }, { ...opts, newUuid: undefined as unknown as () => string });
    const b = patientViewCards({ results, care: NO_CARE }, { ...opts, newUuid: undefined as unknown as () => string });
    const ids = [a[0]!.uuid, a[0]!.suggestions![0]!.uuid, b[0]!.uuid, b[0]!.suggestions![0]!.uuid];
    expect(new Set(ids).size).toBe(4);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('is info for osteopenia and says when the category is a thoracic extrapolation or uncalibrated', () => {
    const [c] = cardsFor(readVbmdResults([obs('o1', '2026-03-01T09:00:00Z', 95, { basis: 'thoracic-extrapolated', status: 'preliminary' })]));
    expect(c!.indicator).toBe('info');
    // One vocabulary: "low bone density (osteopenia)", never "osteopenia" alone.
    expect(c!.summary).toBe('Low bone density (osteopenia) range: vBMD 95.0 mg/cm3 on CT of 2026-03-01');
    expect(c!.detail).toContain('low bone density (osteopenia) range, from the CT');
    expect((c!.detail ?? '').replace(/low bone density \(osteopenia\)/gi, '')).not.toMatch(/osteopenia/i);
    expect(c!.detail).toContain('extrapolation');
    expect(c!.detail).toContain('Uncalibrated');
  });

  it('carries the contrast caveat, and says when its rate mixes contrast-enhanced and other CTs', () => {
    // 120 -> 100 -> 85 over two years: a decline, but the two older CTs were contrast-enhanced.
    const read = readVbmdResults([obs('a', '2024-03-01T00:00:00Z', 120), obs('b', '2025-03-01T00:00:00Z', 100), obs('c', '2026-03-01T00:00:00Z', 85)]);
    const contrastOf: Record<string, boolean> = { a: true, b: true, c: true };
    const allContrast = read.map((r) => ({ ...r, contrastEnhanced: contrastOf[r.observationId!]! }));
    const [same] = cardsFor(allContrast);
    expect(same!.detail).toContain('> **Contrast-enhanced CT:** vBMD reads higher than without contrast');
    expect(same!.detail).not.toContain('The rate mixes');
    const mixed = read.map((r) => ({ ...r, contrastEnhanced: r.observationId !== 'c' }));
    const [c] = cardsFor(mixed);
    expect(c!.detail).toMatch(/\*\*Trend:\*\* [−-]?[\d.]+%\/year .*The rate mixes 2 contrast-enhanced and 1 other CT: contrast reads higher/);
    // The latest CT had no contrast: no contrast caveat for the value itself.
    expect(c!.detail).not.toContain('**Contrast-enhanced CT:**');
  });

  it('is silent for normal and stable, and for no data', () => {
    expect(cardsFor(readVbmdResults([obs('a', '2024-01-01T00:00:00Z', 150), obs('b', '2025-01-01T00:00:00Z', 148)]))).toEqual([]);
    expect(cardsFor([])).toEqual([]);
  });

  it('warns for a fast decline beyond the least significant change even while still normal', () => {
    const results = readVbmdResults([obs('a', '2023-03-01T00:00:00Z', 170), obs('b', '2024-03-01T00:00:00Z', 155), obs('c', '2025-03-01T00:00:00Z', 140)]);
    const [c] = cardsFor(results);
    expect(c!.indicator).toBe('warning');
    expect(c!.summary).toMatch(/^Bone density falling fast: 8\.\d%\/yr, vBMD now 140\.0 mg\/cm3/);
    expect(c!.detail).toContain('faster than the 5%/year alert threshold and beyond the least significant change');
    expect(c!.detail).toContain('Since the previous CT (2024-03-01): −15.0 mg/cm3 (−9.7%): within measurement error (least significant change 10.0%)');
    // A slower decline than the threshold stays silent.
    expect(patientViewCards({ results, care: NO_CARE }, { ...opts, declinePctPerYear: 10 })).toEqual([]);
  });

  it('a fast-looking slope within measurement error is no decline: no warning for a normal value', () => {
    // 150 -> 140 in 8 months is -10%/yr, but -6.7% is within the 10% least significant change.
    const results = readVbmdResults([obs('a', '2024-07-01T00:00:00Z', 150), obs('b', '2025-03-01T00:00:00Z', 140)]);
    expect(cardsFor(results)).toEqual([]);
    const osteopenic = readVbmdResults([obs('a', '2024-07-01T00:00:00Z', 110), obs('b', '2025-03-01T00:00:00Z', 104)]);
    const [c] = cardsFor(osteopenic);
    expect(c!.indicator).toBe('info');
    expect(c!.summary).not.toContain('falling');
    expect(c!.detail).toContain('within measurement error');
  });

  it('makes osteopenia plus a significant fast decline a warning', () => {
    const results = readVbmdResults([obs('a', '2024-03-01T00:00:00Z', 110), obs('b', '2025-03-01T00:00:00Z', 95)]);
    const [c] = cardsFor(results);
    expect(c!.indicator).toBe('warning');
    expect(c!.summary).toContain('falling 13.6%/yr');
    expect(c!.detail).toContain('a decline beyond the least significant change');
  });

  it('names vertebral fractures first, as a warning, even with a normal density', () => {
    const fx: FractureFinding[] = [{ observationId: 'f1', patient: 'p1', level: 'L3', grade: 2, effectiveMs: Date.parse('2026-03-01T09:00:00Z'), studyUid: '1.2' }];
    const [c] = cardsFor(readVbmdResults([obs('o1', '2026-03-01T09:00:00Z', 130)]), { fractures: fx });
    expect(c!.indicator).toBe('warning');
    expect(c!.summary).toBe('Vertebral fracture on CT: L3 (Genant 2); vBMD 130.0 mg/cm3 (normal range)');
    expect(c!.detail).toMatch(/^\*\*Vertebral compression fracture\*\* on CT at L3 \(Genant grade 2, CT of 2026-03-01\)/);
  });

  it.each([
    ['on bone-protective therapy', { therapy: 'alendronate' }, 'on bone-protective therapy (alendronate)', true],
    ['a DXA in the last two years', { recentDxaMs: Date.parse('2025-06-01T00:00:00Z') }, 'DXA on 2025-06-01', false],
    ['a DXA already ordered', { dxaOrdered: true }, 'a DXA is already ordered', false],
  ] as const)('no warning (info) when %s; no second DXA suggested', (_n, care, text, suggests) => {
    const [c] = cardsFor(readVbmdResults([obs('o1', '2026-03-01T09:00:00Z', 72.4)]), { care: { ...NO_CARE, ...care } });
    expect(c!.indicator).toBe('info');
    expect(c!.detail).toContain(text);
    expect(!!c!.suggestions?.length).toBe(suggests);
    if (suggests) expect(c!.suggestions![0]!.isRecommended).toBe(false);
  });

  it('says what it could not check and then still warns', () => {
    const [c] = cardsFor(readVbmdResults([obs('o1', '2026-03-01T09:00:00Z', 72.4)]), { care: { therapy: 'unknown', recentDxaMs: 'unknown', dxaOrdered: 'unknown' } });
    expect(c!.indicator).toBe('warning');
    expect(c!.detail).toContain('Could not check bone-protective therapy, recent DXA, DXA orders');
  });
});

describe('care in place, read from the record', () => {
  const matcher = compileTherapyValueSet(defaultTherapyValueSet());
  const now = Date.parse('2026-03-10T00:00:00Z');
  const med = (status: string, text: string) => ({ resourceType: 'MedicationRequest', status, subject: { reference: 'Patient/p1' }, medicationCodeableConcept: { text } });
  const dxaObs = (date: string) => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '24966-4' }] }, effectiveDateTime: date });
  const dxaOrder = (status: string) => ({ resourceType: 'ServiceRequest', status, intent: 'order', code: { coding: [{ system: CPT, code: '77080' }] } });

  it('therapy from the cohort value set (active only), DXA within two years, open DXA orders', () => {
    expect(readCareContext({ medications: [[med('active', 'Alendronate sodium 70 MG Oral Tablet')], []], dxaResults: [[], []], dxaOrders: [] }, matcher, now)).toEqual({
      therapy: 'alendronate',
      recentDxaMs: null,
      dxaOrdered: false,
    });
    expect(readCareContext({ medications: [[med('stopped', 'alendronate'), med('active', 'metformin')], []], dxaResults: [[dxaObs('2023-01-01')], []], dxaOrders: [dxaOrder('completed')] }, matcher, now)).toEqual({
      therapy: null,
      recentDxaMs: null,
      dxaOrdered: false,
    });
    expect(readCareContext({ medications: [[], []], dxaResults: [[dxaObs('2025-01-01T00:00:00Z')], []], dxaOrders: [dxaOrder('active')] }, matcher, now)).toEqual({
      therapy: null,
      recentDxaMs: Date.parse('2025-01-01T00:00:00Z'),
      dxaOrdered: true,
    });
  });

  it('unknown when a key could not be read, but what is found still counts', () => {
    expect(readCareContext({ medications: [undefined, []], dxaResults: [undefined, undefined], dxaOrders: undefined }, matcher, now)).toEqual({
      therapy: 'unknown',
      recentDxaMs: 'unknown',
      dxaOrdered: 'unknown',
    });
    expect(readCareContext({ medications: [[med('active', 'denosumab')], undefined], dxaResults: [[], undefined], dxaOrders: [] }, matcher, now).therapy).toBe('denosumab');
  });
});

describe('CT value set and order card', () => {
  const vs = loadCtValueSet();
  const sr = (id: string, system: string, code: string, extra: object = {}) => ({
    resourceType: 'ServiceRequest',
    id,
    status: 'draft',
    intent: 'order',
    subject: { reference: 'Patient/p1' },
    code: { coding: [{ system, code }] },
    ...extra,
  });

  it('matches the shipped chest/abdomen CT codes and ranges, and nothing else', () => {
    expect(vs.match([{ system: CPT, code: '71250' }])?.code).toBe('71250');
    expect(vs.match([{ system: CPT, code: '74176' }])?.code).toBe('74176');
    expect(vs.match([{ system: CPT, code: '74150' }])?.code).toBe('74150');
    expect(vs.match([{ system: CPT, code: '74179' }])).toBeUndefined();
    expect(vs.match([{ system: 'http://loinc.org', code: '24627-2' }])?.code).toBe('24627-2');
    expect(vs.match([{ system: CPT, code: '70450' }])).toBeUndefined(); // CT head
    expect(vs.match([{ system: 'http://loinc.org', code: '71250' }])).toBeUndefined(); // right code, wrong system
  });

  it('takes site extensions and rejects a malformed file with a clear message', () => {
    const local = buildCtValueSet(parseCtValueSet({ include: [{ system: 'urn:local', concepts: [{ code: 'CTCAP' }] }] }, 'x.json').include);
    expect(local.match([{ system: 'urn:local', code: 'CTCAP' }])).toBeTruthy();
    expect(() => parseCtValueSet({ include: [{ system: CPT, ranges: [{ from: '74178', to: '74150' }] }] }, 'bad.json')).toThrow(/bad\.json is not valid/);
  });

  it('finds CT orders with their accession numbers; order-select only looks at selections', () => {
    const bundle = {
      resourceType: 'Bundle',
      entry: [
        {
          resource: sr('sr1', CPT, '71260', {
            identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: 'ACC-1' }],
          }),
        },
        { resource: sr('sr2', CPT, '70450') },
        { resource: { resourceType: 'MedicationRequest', id: 'm1' } },
      ],
    };
    expect(matchCtOrders(bundle, vs)).toEqual([{ serviceRequestId: 'sr1', code: expect.objectContaining({ code: '71260' }), accessionNumber: 'ACC-1' }]);
    expect(matchCtOrders(bundle, vs, ['ServiceRequest/sr2'])).toEqual([]);
  });

  it('says vBMD will be measured, with the last result when there is one, and nothing for other orders', () => {
    const orders = [{ serviceRequestId: 'sr1', code: { system: CPT, code: '71250', display: 'CT thorax, without contrast' } }];
    const [latest] = readVbmdResults([obs('o1', '2025-02-01T00:00:00Z', 78.2)]);
    const [c] = orderCards(orders, latest, { smartLaunchUrl: opts.smartLaunchUrl });
    expect(c!.indicator).toBe('info');
    expect(c!.summary).toBe('Bone density (vBMD) will be measured from this CT; last 78.2 mg/cm3 on 2025-02-01');
    expect(c!.detail).toContain('osteoporosis range');
    expect(orderCards(orders, null, { smartLaunchUrl: opts.smartLaunchUrl })[0]!.detail).toContain('No earlier vBMD result');
    expect(orderCards(orders, undefined, { smartLaunchUrl: opts.smartLaunchUrl })[0]!.detail).toContain('could not be checked');
    expect(orderCards([], latest, { smartLaunchUrl: opts.smartLaunchUrl })).toEqual([]);
  });
});

describe('prefetch templates', () => {
  it('fills first-level context tokens and refuses missing ones', () => {
    expect(fillTemplate('Observation?patient={{context.patientId}}&_count=1', { patientId: 'a b' })).toBe('Observation?patient=a%20b&_count=1');
    expect(fillTemplate('Observation?patient={{context.patientId}}', {})).toBeUndefined();
  });
});
