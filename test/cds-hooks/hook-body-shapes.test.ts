import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { VBMD_BASIS_CODES, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';
import { startCdsApp } from '../support/cds-app.js';
import type { CdsApp } from '../support/cds-app.js';

/**
 * Hook bodies as an attacker or a broken EHR sends them, over the real HTTP surface: FHIR inside the body
 * shaped wrongly where the service reads it is a 400 naming the field (never a 500), stored fields have
 * length limits (nothing stored when one is exceeded), and only order-sign leaves a watch behind.
 */
let key: CdsClientKey;
let cds: CdsApp;

beforeAll(async () => {
  key = await generateClientKey('https://ehr.shapes.test');
  cds = await startCdsApp({ clients: [key] });
});
afterAll(() => cds?.close());

const ACSN = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] };
const ctOrder = (over: Record<string, unknown> = {}) => ({
  resourceType: 'ServiceRequest',
  id: 'sr-1',
  status: 'draft',
  intent: 'order',
  code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '71250' }] },
  identifier: [{ type: ACSN, value: 'ACC-1' }],
  ...over,
});
const orderHook = (hook: 'order-sign' | 'order-select', sr: unknown, ctx: Record<string, unknown> = {}) => ({
  hook,
  hookInstance: crypto.randomUUID(),
  context: {
    userId: 'Practitioner/u1',
    patientId: 'p1',
    draftOrders: { resourceType: 'Bundle', entry: [{ resource: sr }] },
    ...(hook === 'order-select' ? { selections: ['ServiceRequest/sr-1'] } : {}),
    ...ctx,
  },
  prefetch: { vbmdObservations: { resourceType: 'Bundle', type: 'searchset', entry: [] } },
});
const obs = (over: Record<string, unknown> = {}) => ({
  resourceType: 'Observation',
  id: 'o1',
  status: 'final',
  code: { coding: [{ ...VBMD_SUMMARY_CODE }] },
  effectiveDateTime: '2026-01-01T10:00:00Z',
  valueQuantity: { value: 70, unit: 'mg/cm3', system: 'http://unitsofmeasure.org', code: 'mg/cm3' },
  method: { coding: [{ ...VBMD_BASIS_CODES.lumbar }] },
  ...over,
});
const patientView = (prefetch: Record<string, unknown>) => ({
  hook: 'patient-view',
  hookInstance: crypto.randomUUID(),
  context: { userId: 'Practitioner/u1', patientId: 'p1' },
  prefetch,
});
const searchset = (...resources: unknown[]) => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });

describe('badly shaped FHIR in hook bodies: 400 naming the field, never 500', () => {
  const cases: [string, string, unknown, RegExp][] = [
    ['prefetch Bundle entry is an object', 'vbmd-patient-view', patientView({ vbmdObservations: { resourceType: 'Bundle', entry: { resource: obs() } } }), /prefetch\.vbmdObservations\.entry/],
    ['ServiceRequest code.coding is a number', 'vbmd-order-sign', orderHook('order-sign', ctOrder({ code: { coding: 7 } })), /resource\.code\.coding/],
    ['ServiceRequest identifier is a number', 'vbmd-order-sign', orderHook('order-sign', ctOrder({ identifier: 12 })), /resource\.identifier/],
    ['identifier type.coding is a string', 'vbmd-order-sign', orderHook('order-sign', ctOrder({ identifier: [{ type: { coding: 'ACSN' }, value: 'A' }] })), /identifier\.0\.type\.coding/],
    ['identifier value is a number', 'vbmd-order-select', orderHook('order-select', ctOrder({ identifier: [{ type: ACSN, value: 5 }] })), /identifier\.0\.value/],
    ['coding code is an object', 'vbmd-order-select', orderHook('order-select', ctOrder({ code: { coding: [{ system: 'x', code: {} }] } })), /coding\.0\.code/],
    ['Observation valueQuantity is a string', 'vbmd-patient-view', patientView({ vbmdObservations: searchset(obs({ valueQuantity: '70 mg/cm3' })) }), /valueQuantity/],
    ['Observation component is an object', 'vbmd-patient-view', patientView({ vbmdObservations: searchset(obs({ component: { code: {} } })) }), /component/],
    ['Observation code.coding is a number', 'vbmd-patient-view', patientView({ vbmdObservations: searchset(obs({ code: { coding: 3 } })) }), /code\.coding/],
    ['RiskAssessment prediction is an object', 'vbmd-patient-view', patientView({ vbmdObservations: searchset(obs()), riskAssessments: searchset({ resourceType: 'RiskAssessment', status: 'final', prediction: { outcome: {} } }) }), /prediction/],
    ['Observation derivedFrom is a string', 'vbmd-patient-view', patientView({ vbmdObservations: searchset(obs({ derivedFrom: 'ImagingStudy/1' })) }), /derivedFrom/],
  ];
  it.each(cases)('%s', async (_label, service, body, field) => {
    const r = await cds.post(key, `/cds-services/${service}`, body);
    expect(r.status).toBe(400);
    expect(String(r.body!.message)).toMatch(field);
  });

  it('well-shaped bodies still work (control)', async () => {
    expect((await cds.post(key, '/cds-services/vbmd-patient-view', patientView({ vbmdObservations: searchset(obs()), riskAssessments: searchset() }))).status).toBe(200);
    expect((await cds.post(key, '/cds-services/vbmd-order-sign', orderHook('order-sign', ctOrder({ identifier: [{ type: ACSN, value: 'ACC-OK' }] })))).status).toBe(200);
    expect(await cds.watches.findByAccession('ACC-OK')).toBeDefined();
  });
});

describe('length limits on stored hook fields', () => {
  it('refuses a 10,000-character accession and stores nothing', async () => {
    const acc = 'A'.repeat(10_000);
    const r = await cds.post(key, '/cds-services/vbmd-order-sign', orderHook('order-sign', ctOrder({ identifier: [{ type: ACSN, value: acc }] })));
    expect(r.status).toBe(400);
    expect(String(r.body!.message)).toMatch(/at most 64 characters/);
    expect(await cds.watches.findByAccession(acc)).toBeUndefined();
  });

  it('refuses a 100,000-character patientId, a long ServiceRequest id and a long hookInstance', async () => {
    const longPatient = orderHook('order-sign', ctOrder({ identifier: [{ type: ACSN, value: 'ACC-LONG-P' }] }), { patientId: 'p'.repeat(100_000) });
    const r = await cds.post(key, '/cds-services/vbmd-order-sign', longPatient);
    expect(r.status).toBe(400);
    expect(String(r.body!.message)).toMatch(/context\.patientId/);
    expect(await cds.watches.findByAccession('ACC-LONG-P')).toBeUndefined();
    const longSr = await cds.post(key, '/cds-services/vbmd-order-sign', orderHook('order-sign', ctOrder({ id: 's'.repeat(65), identifier: [{ type: ACSN, value: 'ACC-LONG-SR' }] })));
    expect(longSr.status).toBe(400);
    expect(await cds.watches.findByAccession('ACC-LONG-SR')).toBeUndefined();
    const longInstance = await cds.post(key, '/cds-services/vbmd-patient-view', { ...patientView({ vbmdObservations: searchset() }), hookInstance: 'h'.repeat(10_000) });
    expect(longInstance.status).toBe(400);
  });
});

describe('watches start at order-sign', () => {
  it('order-select shows the card but leaves no watch; order-sign records one', async () => {
    const selected = await cds.post(key, '/cds-services/vbmd-order-select', orderHook('order-select', ctOrder({ identifier: [{ type: ACSN, value: 'ACC-SEL' }] })));
    expect(selected.status).toBe(200);
    expect((selected.body!.cards as { indicator: string }[])[0]!.indicator).toBe('info');
    expect(await cds.watches.findByAccession('ACC-SEL')).toBeUndefined();
    const signed = await cds.post(key, '/cds-services/vbmd-order-sign', orderHook('order-sign', ctOrder({ identifier: [{ type: ACSN, value: 'ACC-SEL' }] })));
    expect(signed.status).toBe(200);
    expect(await cds.watches.findByAccession('ACC-SEL')).toMatchObject({ hook: 'order-sign', status: 'waiting' });
  });
});
