import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCohortWith } from '../../src/population/engine.js';
import { runCohort } from '../../src/population/query.js';
import { compileTherapyValueSet, defaultTherapyValueSet } from '../../src/population/therapy-value-set.js';
import { BulkExportSource } from '../../src/population/sources/bulk-export.js';
import { retryAfterMs } from '../../src/net/retry.js';
import { StaticTokenProvider } from '../../src/net/token-provider.js';
import { NdjsonDirectorySource } from '../../src/population/sources/ndjson-dir.js';
import { isVbmdError } from '../../src/util/errors.js';
import { AS_OF, cohortFixture, EXPECTED } from './fixtures.js';
import { checkKnownAnswers, comparable } from './known-answers.js';
import { toNdjson, writeFixtureNdjson } from './write-ndjson.js';

/**
 * A small Bulk Data server (FHIR Bulk Data Access 2.0 export flow) on loopback: kick-off answers 202 with
 * Content-Location; the status URL answers 202 (Retry-After, X-Progress) a few times, then the manifest; files
 * are NDJSON sent in chunks; every request must carry the bearer token; DELETE ends the job.
 */
interface Job {
  types: string[];
  polls: number;
  deleted: boolean;
  fail?: boolean;
}
const jobs = new Map<string, Job>();
const log: string[] = [];
const typeFilters: string[] = [];
let server: Server;
let base: string;
let dir: string;
let mode: 'ok' | 'fail' | 'no-location' = 'ok';

beforeAll(async () => {
  const f = cohortFixture();
  const files: Record<string, string> = {
    Observation: toNdjson([...f.observations, ...f.other]),
    MedicationRequest: toNdjson(f.requests),
    MedicationStatement: toNdjson(f.statements),
    Patient: toNdjson([{ resourceType: 'Patient', id: 'x' }]),
  };
  const app = express();
  app.use((req, res, next) => {
    log.push(`${req.method} ${req.path} ${req.headers.authorization ? 'auth' : 'noauth'}`);
    if (req.headers.authorization !== 'Bearer bulk-token') {
      res.status(401).json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', details: { text: 'token required' } }] });
      return;
    }
    next();
  });
  app.get('/fhir/\\$export', (req, res) => {
    if (req.headers.prefer !== 'respond-async') {
      res.status(400).json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', details: { text: 'Prefer: respond-async required' } }] });
      return;
    }
    const id = String(jobs.size + 1);
    typeFilters.push(String(req.query._typeFilter ?? ''));
    jobs.set(id, { types: String(req.query._type ?? '').split(','), polls: 0, deleted: false, fail: mode === 'fail' });
    if (mode !== 'no-location') res.setHeader('Content-Location', `/status/${id}`);
    res.status(202).end();
  });
  app.get('/status/:id', (req, res) => {
    const job = jobs.get(req.params.id);
    if (!job || job.deleted) {
      res.status(404).end();
      return;
    }
    job.polls++;
    if (job.polls < 3) {
      res.setHeader('Retry-After', '0');
      res.setHeader('X-Progress', `${job.polls * 33}% done`);
      res.status(202).end();
      return;
    }
    if (job.fail) {
      res.status(500).json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', details: { text: 'export job crashed' } }] });
      return;
    }
    res.json({
      transactionTime: '2025-06-01T00:00:00Z',
      request: `${base}/fhir/$export?_type=${job.types.join(',')}`,
      requiresAccessToken: true,
      output: job.types.filter((t) => files[t]).map((t) => ({ type: t, url: `${base}/files/${t}.ndjson` })),
      error: [],
    });
  });
  app.delete('/status/:id', (req, res) => {
    const job = jobs.get(req.params.id);
    if (job) job.deleted = true;
    res.status(202).end();
  });
  app.get('/files/:name', (req, res) => {
    const type = req.params.name.replace(/\.ndjson$/, '');
    const body = files[type];
    if (!body) {
      res.status(404).end();
      return;
    }
    res.setHeader('content-type', 'application/fhir+ndjson');
    // Chunks that split lines, as a real stream does.
    for (let i = 0; i < body.length; i += 700) res.write(body.slice(i, i + 700));
    res.end();
  });
  server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = await writeFixtureNdjson();
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => server?.close(() => r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const source = () => new BulkExportSource(`${base}/fhir`, { auth: new StaticTokenProvider('bulk-token'), minPollMs: 5, maxPollMs: 50 });

describe('cohort over a Bulk Data $export', () => {
  it('kicks off, polls through 202s, downloads the NDJSON and gives the same known answers as files on disk', async () => {
    mode = 'ok';
    jobs.clear();
    log.length = 0;
    const viaBulk = await checkKnownAnswers(source());
    const viaFiles = await checkKnownAnswers(new NdjsonDirectorySource(dir));
    for (const k of Object.keys(viaFiles)) expect(comparable(viaBulk[k]), k).toEqual(comparable(viaFiles[k]));
    // One job per query run; each: kick-off, 3 polls (two 202s then the manifest), 3 downloads, DELETE.
    expect(jobs.size).toBe(6);
    for (const job of jobs.values()) {
      expect(job.types).toEqual(['Observation', 'MedicationRequest', 'MedicationStatement']);
      expect(job.polls).toBe(3);
      expect(job.deleted).toBe(true);
    }
    expect(log.slice(0, 9)).toEqual([
      'GET /fhir/$export auth',
      'GET /status/1 auth',
      'GET /status/1 auth',
      'GET /status/1 auth',
      'GET /files/Observation.ndjson auth',
      'GET /files/MedicationRequest.ndjson auth',
      'GET /files/MedicationStatement.ndjson auth',
      'DELETE /status/1 auth',
      'GET /fhir/$export auth',
    ]);
  });

  it('reports a failed export job with the server and its OperationOutcome, and deletes it', async () => {
    mode = 'fail';
    jobs.clear();
    const err = await runCohort(source(), { asOf: AS_OF }).catch((e: unknown) => e);
    expect(isVbmdError(err)).toBe(true);
    expect((err as Error).message).toMatch(/HTTP 500: export job crashed/);
    expect((err as Error).message).toContain(`${base}/status/1`);
    expect(jobs.get('1')?.deleted).toBe(true);
  });

  it('refuses a kick-off answer without Content-Location, and missing credentials', async () => {
    mode = 'no-location';
    await expect(runCohort(source(), { asOf: AS_OF })).rejects.toThrow(/no Content-Location/);
    mode = 'ok';
    const err = await runCohort(new BulkExportSource(`${base}/fhir`, { minPollMs: 5 }), {}).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/refused the Bulk Data \$export kick-off with HTTP 401: token required/);
  });

  it('asks for vBMD Observations only with _typeFilter when told to', async () => {
    mode = 'ok';
    typeFilters.length = 0;
    const filtered = new BulkExportSource(`${base}/fhir`, { auth: new StaticTokenProvider('bulk-token'), minPollMs: 5, typeFilter: true });
    const r = await runCohort(filtered, { category: 'osteoporosis', untreated: true, asOf: AS_OF });
    expect(r.rows.map((x) => x.patient)).toEqual(EXPECTED.osteoporosisUntreated);
    await runCohort(source(), { asOf: AS_OF });
    expect(typeFilters).toEqual(['Observation?code=https://vbmd.org/fhir/CodeSystem/vbmd|vbmd-trabecular-qct', '']);
  });

  it('DuckDB reads a Bulk export downloaded to disk: same rows as the streaming engine, job deleted, download folder removed', async () => {
    mode = 'ok';
    jobs.clear();
    const tempRoot = await mkdtemp(join(tmpdir(), 'vbmd-bulk-duckdb-'));
    const matcher = compileTherapyValueSet(defaultTherapyValueSet());
    const request = { spec: `bulk:${base}/fhir`, query: { category: 'osteoporosis', untreated: true, asOf: AS_OF } as const, matcher };
    const sourceOptions = { auth: new StaticTokenProvider('bulk-token'), bulk: { minPollMs: 5, maxPollMs: 50 } };
    const duckdb = await runCohortWith({ ...request, engine: 'auto', sourceOptions, duckdb: { tempRoot } });
    const stream = await runCohortWith({ ...request, engine: 'stream', sourceOptions });
    expect(duckdb.rows.map((r) => r.patient)).toEqual(EXPECTED.osteoporosisUntreated);
    expect(comparable(duckdb)).toEqual(comparable(stream));
    expect(duckdb.summary.source).toBe(`bulk:${base}/fhir`);
    expect([...jobs.values()].every((j) => j.deleted)).toBe(true);
    expect(await readdir(tempRoot)).toEqual([]);
    await rm(tempRoot, { recursive: true, force: true });
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs(new Date(Date.UTC(2025, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2025, 0, 1))).toBe(30_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});
