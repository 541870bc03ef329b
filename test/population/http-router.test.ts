import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { rm } from 'node:fs/promises';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCohortRouter } from '../../src/population/http.js';
import { NdjsonDirectorySource } from '../../src/population/sources/ndjson-dir.js';
import type { ResourceSource } from '../../src/population/sources/types.js';
import { VbmdError } from '../../src/util/errors.js';
import { AS_OF, EXPECTED } from './fixtures.js';
import { writeFixtureNdjson } from './write-ndjson.js';

let server: Server;
let base: string;
let dir: string;
beforeAll(async () => {
  dir = await writeFixtureNdjson();
  const app = express();
  app.use('/api/cohort', createCohortRouter({ source: new NdjsonDirectorySource(dir), authorize: (req) => req.headers.authorization === 'Bearer analyst' }));
  server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/cohort`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => server?.close(() => r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const get = (q: string, auth = 'Bearer analyst') => fetch(`${base}?${q}`, { headers: { authorization: auth } });

describe('GET /api/cohort', () => {
  it('answers the query parameters like the CLI flags', async () => {
    const res = await get(`category=osteoporosis&untreated=true&asOf=${AS_OF}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { summary: { patients: number; byCategory: unknown }; rows: Array<{ patient_id: string }> };
    expect(body.rows.map((r) => r.patient_id)).toEqual(EXPECTED.osteoporosisUntreated);
    expect(body.summary.patients).toBe(EXPECTED.patients);
    expect(body.summary.byCategory).toEqual(EXPECTED.byCategory);
    const declining = (await (await get(`declining=6&asOf=${AS_OF}`)).json()) as { rows: Array<{ patient_id: string }> };
    expect(declining.rows.map((r) => r.patient_id)).toEqual(EXPECTED.declining6);
    const window = (await (await get('since=2019-01-01&until=2020-12-31')).json()) as { rows: Array<{ patient_id: string; vbmd_mg_cm3: number }> };
    expect(window.rows.map((r) => [r.patient_id, r.vbmd_mg_cm3])).toEqual([['window', 60]]);
  });

  it('serves CSV, a FHIR Group and the SVG histogram', async () => {
    const csv = await get(`format=csv&category=osteoporosis&untreated=1&asOf=${AS_OF}`);
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    expect((await csv.text()).trim().split('\r\n')).toHaveLength(1 + EXPECTED.osteoporosisUntreated.length);
    const group = await get(`format=group&declining=5&asOf=${AS_OF}`);
    expect(group.headers.get('content-type')).toMatch(/application\/fhir\+json/);
    const g = (await group.json()) as { resourceType: string; member: Array<{ entity: { reference: string } }> };
    expect(g.resourceType).toBe('Group');
    expect(g.member.map((m) => m.entity.reference)).toEqual(EXPECTED.declining5.map((p) => `Patient/${p}`));
    const svg = await get('format=svg');
    expect(svg.headers.get('content-type')).toMatch(/image\/svg\+xml/);
    expect(await svg.text()).toContain('<svg');
  });

  it('runs one query at a time (503 + Retry-After for the next) and reports source failures as 502', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: ResourceSource = {
      label: 'slow',
      async *batches() {
        await gate;
        yield [];
      },
    };
    const failing: ResourceSource = {
      label: 'failing',
      async *batches() {
        throw new VbmdError('remote', 'https://ehr.example/fhir answered the Observation search page 1 with HTTP 500.');
      },
    };
    const app = express();
    app.use('/slow', createCohortRouter({ source: slow, authorize: () => true }));
    app.use('/failing', createCohortRouter({ source: failing, authorize: () => true }));
    const srv = createServer(app);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      const first = fetch(`${url}/slow`);
      await new Promise((r) => setTimeout(r, 100));
      const second = await fetch(`${url}/slow`);
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('10');
      release();
      expect((await first).status).toBe(200);
      const failed = await fetch(`${url}/failing`);
      expect(failed.status).toBe(502);
      expect(((await failed.json()) as { error: string }).error).toContain('https://ehr.example/fhir');
    } finally {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('refuses bad parameters with one sentence, and callers without access', async () => {
    for (const q of ['category=low', 'declining=-3', 'since=yesterday', 'source=ndjson:/etc', 'format=xml']) {
      const res = await get(q);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: string }).error, q).toMatch(/cohort query/i);
    }
    const denied = await get('', 'Bearer someone');
    expect(denied.status).toBe(401);
  });
});
