import { createServer } from 'node:http';
import type { Server } from 'node:http';
import Database from 'better-sqlite3';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { loadCtValueSet } from '../../cds-hooks/ct-value-set.js';
import { SqliteFeedbackStore } from '../../cds-hooks/feedback-store.js';
import { MemoryReplayCache } from '../../cds-hooks/replay-cache.js';
import { createCdsHooksRouter } from '../../cds-hooks/router.js';
import { SqliteWatchStore } from '../../src/jobs/watches.js';
import { VBMD_BASIS_CODES, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';

/**
 * Where the service may send a CDS client's fhirAuthorization token, over real loopback servers: only to
 * the FHIR bases listed for that client (which may then be loopback or private), otherwise only to public
 * addresses; never along a redirect; and never reading more than the reply cap (a huge reply does not
 * stall the hook).
 */
let app: Server;
let base: string;
let fhir: Server;
let fhirBase: string;
let other: Server;
let otherBase: string;
let listedKey: CdsClientKey;
let unlistedKey: CdsClientKey;
const calls: { server: 'fhir' | 'other'; url: string; auth: string | undefined }[] = [];

const obs = {
  resourceType: 'Observation',
  id: 'f1',
  status: 'final',
  code: { coding: [{ ...VBMD_SUMMARY_CODE }] },
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: '2026-01-05T10:00:00Z',
  valueQuantity: { value: 61.5, unit: 'mg/cm3', system: 'http://unitsofmeasure.org', code: 'mg/cm3' },
  method: { coding: [{ ...VBMD_BASIS_CODES.lumbar }] },
};

async function listen(handler: express.Express): Promise<[Server, string]> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return [s, `http://127.0.0.1:${(s.address() as { port: number }).port}`];
}

beforeAll(async () => {
  [listedKey, unlistedKey] = await Promise.all([generateClientKey('https://listed.ehr.test'), generateClientKey('https://unlisted.ehr.test')]);
  const o = express();
  o.use((req, res) => {
    calls.push({ server: 'other', url: req.url, auth: req.get('authorization') });
    res.json({ resourceType: 'Bundle', type: 'searchset', entry: [{ resource: obs }] });
  });
  [other, otherBase] = await listen(o);
  const f = express();
  f.get('/fhir/Observation', (req, res) => {
    calls.push({ server: 'fhir', url: req.url, auth: req.get('authorization') });
    res.json({ resourceType: 'Bundle', type: 'searchset', entry: [{ resource: obs }] });
  });
  f.get('/redirecting/Observation', (req, res) => {
    calls.push({ server: 'fhir', url: req.url, auth: req.get('authorization') });
    res.redirect(302, `${otherBase}/stolen`);
  });
  f.get('/huge/Observation', (req, res) => {
    calls.push({ server: 'fhir', url: req.url, auth: req.get('authorization') });
    // A valid but 200 MB searchset: before the cap the whole body was read and parsed on the event loop.
    res.writeHead(200, { 'content-type': 'application/fhir+json' });
    const chunk = Buffer.from(`${JSON.stringify({ resource: obs })},`.repeat(2000));
    let sent = 0;
    res.write('{"resourceType":"Bundle","type":"searchset","entry":[');
    const pump = (): void => {
      while (sent < 200 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end(`${JSON.stringify({ resource: obs })}]}`);
    };
    res.on('close', () => (sent = Infinity));
    pump();
  });
  [fhir, fhirBase] = await listen(f);
  const db = new Database(':memory:');
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const cds = express();
  cds.use(
    createCdsHooksRouter({
      verifier: createClientJwtVerifier({
        clients: [
          { iss: listedKey.iss, jwks: { keys: [listedKey.publicJwk as Record<string, unknown>] } },
          { iss: unlistedKey.iss, jwks: { keys: [unlistedKey.publicJwk as Record<string, unknown>] } },
        ],
        replayCache: new MemoryReplayCache(),
        maxLifetimeS: 3600,
      }),
      publicBaseUrl: base,
      valueSet: loadCtValueSet(),
      declinePctPerYear: 5,
      watches: new SqliteWatchStore(db),
      watchTtlMs: 3600_000,
      feedback: new SqliteFeedbackStore(db),
      clientFhirServers: new Map([[listedKey.iss, [`${fhirBase}/fhir`, `${fhirBase}/redirecting`, `${fhirBase}/huge/`]]]),
    }),
  );
  server.on('request', cds);
  app = server;
});

afterAll(async () => {
  for (const s of [app, fhir, other]) await new Promise<void>((r) => s?.close(() => r()));
});

async function patientView(key: CdsClientKey, fhirServer: string): Promise<{ status: number; ms: number; body: { cards?: { summary: string }[] } }> {
  const url = `${base}/cds-services/vbmd-patient-view`;
  const t0 = Date.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` },
    body: JSON.stringify({
      hook: 'patient-view',
      hookInstance: crypto.randomUUID(),
      fhirServer,
      fhirAuthorization: { access_token: 'client-token', token_type: 'Bearer', expires_in: 300, scope: 'patient/Observation.rs', subject: 'vbmd' },
      context: { userId: 'Practitioner/u1', patientId: 'p1' },
    }),
  });
  const body = (await res.json()) as { cards?: { summary: string }[] };
  return { status: res.status, ms: Date.now() - t0, body };
}

describe('fhirServer allowlist per CDS client', () => {
  it('fetches from a listed FHIR base (loopback allowed because listed) with the client token', async () => {
    const n = calls.length;
    const r = await patientView(listedKey, `${fhirBase}/fhir/`);
    expect(r.status).toBe(200);
    expect(r.body.cards?.[0]?.summary).toContain('61.5 mg/cm3');
    expect(calls.slice(n)).toEqual([expect.objectContaining({ server: 'fhir', auth: 'Bearer client-token' })]);
  });

  it('does not send the token to a base the client did not list, even on the same host', async () => {
    const n = calls.length;
    expect((await patientView(listedKey, `${otherBase}/fhir`)).status).toBe(412);
    expect(calls.length).toBe(n);
  });

  it('a client without a list may not name loopback, private or link-local servers', async () => {
    const n = calls.length;
    expect((await patientView(unlistedKey, `${fhirBase}/fhir`)).status).toBe(412);
    expect((await patientView(unlistedKey, `${otherBase}/fhir`)).status).toBe(412);
    const metadata = await patientView(unlistedKey, 'https://169.254.169.254/latest/meta-data');
    expect(metadata.status).toBe(412);
    expect(metadata.ms).toBeLessThan(1000);
    expect((await patientView(unlistedKey, 'https://10.0.0.5/fhir')).status).toBe(412);
    expect(calls.length).toBe(n);
  });

  it('does not follow a redirect off a listed server', async () => {
    const n = calls.length;
    expect((await patientView(listedKey, `${fhirBase}/redirecting`)).status).toBe(412);
    expect(calls.slice(n).map((c) => c.server)).toEqual(['fhir']);
  });

  it('stops reading a huge FHIR reply at the cap: the hook answers fast instead of parsing 200 MB', async () => {
    const r = await patientView(listedKey, `${fhirBase}/huge`);
    expect(r.status).toBe(412);
    expect(r.ms).toBeLessThan(1000);
  });
});
