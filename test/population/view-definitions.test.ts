import { describe, expect, it } from 'vitest';
import { evaluateView, VIEW_DEFINITIONS } from '../../src/population/view-definitions.js';
import { cohortFixture } from './fixtures.js';

/** The SQL-on-FHIR ViewDefinitions flatten vbmd's Observations and medications to the expected rows. */
describe('SQL-on-FHIR ViewDefinitions', () => {
  const f = cohortFixture();

  it('follow the ViewDefinition shape', () => {
    for (const v of Object.values(VIEW_DEFINITIONS)) {
      expect((v as unknown as { resourceType: string }).resourceType).toBe('ViewDefinition');
      expect(v.status).toBe('active');
      expect(typeof v.resource).toBe('string');
      expect(v.select?.length).toBeGreaterThan(0);
      const names = v.select!.flatMap((s) => s.column ?? []).map((c) => c.name);
      expect(new Set(names).size).toBe(names.length);
      for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9_]*$/);
    }
  });

  it('flatten summary Observations: one row each, lab Observation left out', () => {
    const rows = evaluateView(VIEW_DEFINITIONS.vbmdObservation, [...f.observations, ...f.other, ...f.requests]);
    expect(rows.length).toBe(f.observations.length);
    const first = rows.find((r) => r.patient_id === 'op-untreated-declining' && r.effective_date_time === '2022-01-10');
    expect(first).toEqual({
      id: 'obs-1',
      patient_id: 'op-untreated-declining',
      effective_date_time: '2022-01-10',
      effective_instant: null,
      effective_period_start: null,
      status: 'final',
      value: 95,
      unit: 'mg/cm3',
      unit_system: 'http://unitsofmeasure.org',
      unit_text: 'mg/cm3',
      interpretation: 'L',
      category_text: 'osteopenia',
      basis: 'basis-lumbar',
      study_uid: 'urn:oid:1.2.826.0.1.3680043.10.11',
      data_absent: false,
      issued: '2025-05-01T00:00:00Z',
      calibration_method: null,
      calibration_traceable: null,
    });
    const indeterminate = rows.find((r) => r.patient_id === 'indeterminate-only')!;
    expect(indeterminate.data_absent).toBe(true);
    expect(indeterminate.value ?? null).toBeNull();
    expect(indeterminate.basis).toBe('basis-none');
    expect(rows.filter((r) => r.status === 'entered-in-error').map((r) => r.patient_id)).toEqual(['entered-in-error']);
  });

  it('flatten per-level components: one row per vertebra', () => {
    const rows = evaluateView(VIEW_DEFINITIONS.vbmdObservationLevel, f.observations.slice(0, 1));
    expect(rows.map((r) => [r.level, r.vertebra_snomed, r.value_mg_cm3])).toEqual([
      ['L1', '66794005', 93],
      ['L2', '14293000', 97],
    ]);
  });

  it('flatten medications: one row per coding, with the end of the period', () => {
    const req = evaluateView(VIEW_DEFINITIONS.medicationRequest, f.requests);
    expect(req.find((r) => r.patient_id === 'op-anabolic')).toMatchObject({ status: 'active', code_system: 'http://www.whocc.no/atc', code: 'H05AA02', period_end: '2026-01-01' });
    const st = evaluateView(VIEW_DEFINITIONS.medicationStatement, f.statements);
    expect(st.find((r) => r.patient_id === 'op-ended-statement')).toMatchObject({ status: 'active', code: '46041', period_end: '2024-12-31' });
    expect(st.find((r) => r.patient_id === 'op-denosumab-statement')?.code_display).toBe('Prolia 60 MG/ML Prefilled Syringe');
  });
});
