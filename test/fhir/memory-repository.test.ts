import { describe, expect, it } from 'vitest';
import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { DEMO_DATA_TAG, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';
import { ensureFhirDefinitions } from '../../src/fhir/definitions.js';
import { TransactionalMemoryRepository } from '../../src/sandbox/fhir-server/memory-repository.js';
import { forStudy, indeterminateReport, lumbarOsteoporosisReport, thoracicContrastReport } from './reports.js';

/**
 * Differential test: the indexed, fast-matching repository must answer every query exactly like the stock
 * @medplum/fhir-router MemoryRepository (same resources, same sorted order), including the queries it
 * hands back to the stock matcher.
 */
ensureFhirDefinitions();

function resources(): Resource[] {
  const out: Resource[] = [];
  let k = 0;
  for (const patient of ['p1', 'p2', 'p3']) {
    for (const report of [lumbarOsteoporosisReport(), thoracicContrastReport(), indeterminateReport()]) {
      const b = buildAnalysisBundle(forStudy(report, `${patient}-${k}`), { patient: `Patient/${patient}`, tags: patient === 'p2' ? [{ ...DEMO_DATA_TAG }] : [] });
      const ids = new Map<string, string>();
      for (const e of b.entry ?? []) ids.set(e.fullUrl ?? '', `${e.resource?.resourceType}/${e.resource?.resourceType.toLowerCase()}-${k++}`);
      let text = JSON.stringify(b.entry?.map((e) => e.resource));
      for (const [u, ref] of ids) text = text.replaceAll(u, ref);
      const rs = JSON.parse(text) as Resource[];
      rs.forEach((r, i) => (r.id = [...ids.values()][i].split('/')[1]));
      out.push(...rs);
    }
  }
  out.push(
    { resourceType: 'Observation', id: 'abs', status: 'final', code: { coding: [{ ...VBMD_SUMMARY_CODE }] }, subject: { reference: 'http://other.example/fhir/Patient/p1' }, effectiveDateTime: '2021-05-05T10:00:00Z' },
    { resourceType: 'Observation', id: 'grp', status: 'final', code: { text: 'free text only' }, subject: { reference: 'Group/g1' }, identifier: [{ value: 'no-system' }] },
    { resourceType: 'Observation', id: 'other', status: 'amended', code: { coding: [{ system: 'http://loinc.org', code: 'vbmd-trabecular-qct' }] }, subject: { reference: 'Patient/p1' }, category: [{ coding: [{ code: 'imaging' }] }] },
    { resourceType: 'Patient', id: 'p1', identifier: [{ system: 'urn:mrn', value: '123' }] },
  );
  return out;
}

const QUERIES = [
  'Observation?patient=Patient/p1',
  'Observation?subject=Patient/p1',
  'Observation?patient=Group/g1',
  'Observation?subject=Group/g1',
  `Observation?code=${VBMD_SUMMARY_CODE.system}|${VBMD_SUMMARY_CODE.code}`,
  'Observation?code=vbmd-trabecular-qct',
  'Observation?code=|vbmd-trabecular-qct',
  `Observation?code=${VBMD_SUMMARY_CODE.system}|`,
  `Observation?code=${VBMD_SUMMARY_CODE.system}|nope`,
  'Observation?code=a,vbmd-trabecular-qct',
  'Observation?identifier=no-system',
  'Observation?category=http://terminology.hl7.org/CodeSystem/observation-category|imaging',
  'Observation?category=imaging',
  'Observation?status=final',
  'Observation?status=preliminary',
  `Observation?_tag=${DEMO_DATA_TAG.system}|demo`,
  'Observation?date=ge2023-01-01',
  'Observation?patient=Patient/p2&status=final&category=imaging',
  'RiskAssessment?patient=Patient/p1',
  'Provenance?patient=Patient/p1',
  'Device?identifier=https://vbmd.org/fhir/sid/analysis|nope',
  'Patient?identifier=urn:mrn|123',
  'Patient?identifier=123',
];

async function loaded<T extends MemoryRepository>(repo: T): Promise<T> {
  for (const r of resources()) await repo.updateResource(r);
  return repo;
}

describe('TransactionalMemoryRepository search = stock MemoryRepository search', () => {
  it.each(QUERIES)('%s', async (q) => {
    const stock = await loaded(new MemoryRepository());
    const mine = await loaded(new TransactionalMemoryRepository());
    const a = await stock.search(parseSearchRequest(q));
    const b = await mine.search(parseSearchRequest(q));
    const ids = (x: typeof a): string[] => (x.entry ?? []).map((e) => e.resource?.id ?? '').sort();
    expect(ids(b)).toEqual(ids(a));
    expect(b.total).toBe(a.total);
  });

  it('patient=<bare id> means Patient/<id> (FHIR R4 reference search; CDS prefetch sends bare ids)', async () => {
    const mine = await loaded(new TransactionalMemoryRepository());
    const bare = await mine.search(parseSearchRequest('Observation?patient=p1'));
    const typed = await mine.search(parseSearchRequest('Observation?patient=Patient/p1'));
    expect(bare.total).toBeGreaterThan(0);
    expect(bare.entry?.map((e) => e.resource?.id)).toEqual(typed.entry?.map((e) => e.resource?.id));
  });

  it('the same newest-first order for a patient, and paging by _count/_offset', async () => {
    const stock = await loaded(new MemoryRepository());
    const mine = await loaded(new TransactionalMemoryRepository());
    for (const q of ['Observation?patient=Patient/p3&_sort=-date', 'Observation?patient=Patient/p3&_sort=date', 'Observation?patient=Patient/p1&status=final&_sort=-date&_count=2&_offset=1']) {
      const a = await stock.search(parseSearchRequest(q));
      const b = await mine.search(parseSearchRequest(q));
      expect(b.entry?.map((e) => e.resource?.id), q).toEqual(a.entry?.map((e) => e.resource?.id));
    }
  });

  it('keeps the index right through delete and transaction rollback', async () => {
    const mine = await loaded(new TransactionalMemoryRepository());
    const before = (await mine.search(parseSearchRequest('Observation?patient=Patient/p1'))).total;
    await mine.deleteResource('Observation', 'observation-1');
    expect((await mine.search(parseSearchRequest('Observation?patient=Patient/p1'))).total).toBe((before ?? 0) - 1);
    await expect(
      mine.withTransaction(async () => {
        await mine.deleteResource('Observation', 'other');
        await mine.createResource({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/p1' } });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const after = await mine.search(parseSearchRequest('Observation?patient=Patient/p1'));
    expect(after.total).toBe((before ?? 0) - 1);
    expect(after.entry?.some((e) => e.resource?.id === 'other')).toBe(true);
  });
});
