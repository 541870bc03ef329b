import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import express from 'express';
import { exportJWK, generateKeyPair, jwtVerify } from 'jose';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendServicesAuth } from '../../src/fhir/auth.js';
import { runCohort } from '../../src/population/query.js';
import { COHORT_SCOPES } from '../../src/population/source-auth.js';
import { BulkExportSource } from '../../src/population/sources/bulk-export.js';
import { AS_OF, cohortFixture, EXPECTED } from './fixtures.js';
import { toNdjson } from './write-ndjson.js';

/**
 * Bulk Data export with SMART Backend Services (src/fhir/auth.ts BackendServicesAuth): the test server's
 * token endpoint verifies the ES384 client assertion (iss = sub = client id, aud = token URL) and issues
 * tokens; the first token is "revoked" after the kick-off, so the status poll gets a 401, and the cohort must
 * fetch a fresh token once and carry on.
 */
let server: Server;
let base: string;
let privateJwk: JWK;
const issued: string[] = [];
const revoked = new Set<string>();
const seenTokens: string[] = [];

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  privateJwk = await exportJWK(privateKey);
  const f = cohortFixture();
  const files: Record<string, string> = {
    Observation: toNdjson([...f.observations, ...f.other]),
    MedicationRequest: toNdjson(f.requests),
    MedicationStatement: toNdjson(f.statements),
  };
  const app = express();
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    const body = req.body as Record<string, string>;
    try {
      expect(body.grant_type).toBe('client_credentials');
      expect(body.scope).toBe(COHORT_SCOPES);
      const { payload } = await jwtVerify(body.client_assertion, publicKey, { issuer: 'cohort-client', subject: 'cohort-client', audience: `${base}/token` });
      expect(typeof payload.jti).toBe('string');
    } catch {
      res.status(401).json({ error: 'invalid_client' });
      return;
    }
    const token = `tok-${issued.length + 1}`;
    issued.push(token);
    res.json({ access_token: token, token_type: 'bearer', expires_in: 300, scope: body.scope });
  });
  app.use((req, res, next) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !issued.includes(token) || revoked.has(token)) {
      res.status(401).end();
      return;
    }
    seenTokens.push(`${req.method} ${req.path} ${token}`);
    next();
  });
  app.get('/fhir/\\$export', (_req, res) => {
    // The token is revoked from now on (as if it expired): the next request must come with a new one.
    revoked.add(issued[0]);
    res.setHeader('Content-Location', `${base}/status/1`);
    res.status(202).end();
  });
  app.get('/status/1', (_req, res) => {
    res.json({
      transactionTime: '2025-06-01T00:00:00Z',
      request: `${base}/fhir/$export`,
      requiresAccessToken: true,
      output: Object.keys(files).map((t) => ({ type: t, url: `${base}/files/${t}.ndjson` })),
      error: [],
    });
  });
  app.delete('/status/1', (_req, res) => {
    res.status(202).end();
  });
  app.get('/files/:name', (req, res) => {
    res.type('application/fhir+ndjson').send(files[req.params.name.replace(/\.ndjson$/, '')]);
  });
  server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => server?.close(() => r()));
});

describe('Bulk Data export with SMART Backend Services', () => {
  it('gets a token with a signed client assertion, renews it after a 401, and gives the known answers', async () => {
    const provider = new BackendServicesAuth({ clientId: 'cohort-client', privateKey: privateJwk, alg: 'ES384', scope: COHORT_SCOPES, tokenUrl: `${base}/token` });
    const source = new BulkExportSource(`${base}/fhir`, { auth: provider, minPollMs: 5 });
    const result = await runCohort(source, { category: 'osteoporosis', untreated: true, asOf: AS_OF });
    expect(result.rows.map((r) => r.patient)).toEqual(EXPECTED.osteoporosisUntreated);
    expect(issued).toEqual(['tok-1', 'tok-2']);
    expect(seenTokens[0]).toBe('GET /fhir/$export tok-1');
    expect(seenTokens.slice(1).every((s) => s.endsWith('tok-2'))).toBe(true);
    expect(seenTokens.some((s) => s.startsWith('GET /files/Observation.ndjson'))).toBe(true);
  });
});
