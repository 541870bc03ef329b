import { createServer } from 'node:http';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { VBMD_BASIS_CODES, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';
import { startCdsApp } from '../support/cds-app.js';
import type { CdsApp } from '../support/cds-app.js';

/**
 * Where the service may send a CDS client's fhirAuthorization token, over real loopback servers: only to
 * the FHIR bases listed for that client (which may then be loopback or private), otherwise only to public
 * addresses; never along a redirect; and never reading more than the reply cap (a huge reply does not
 * stall the hook).
 */
let cds: CdsApp;
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
  cds = await startCdsApp({
    clients: [listedKey, unlistedKey],
    deps: { clientFhirServers: new Map([[listedKey.iss, [`${fhirBase}/fhir`, `${fhirBase}/redirecting`, `${fhirBase}/huge/`]]]) },
  });
});

afterAll(async () => {
  await cds?.close();
  for (const s of [fhir, other]) await new Promise<void>((r) => s?.close(() => r()));
});

async function patientView(key: CdsClientKey, fhirServer: string): Promise<{ status: number; ms: number; body: { cards?: { summary: string }[] } }> {
  const r = await cds.post(key, '/cds-services/vbmd-patient-view', {
    hook: 'patient-view',
    hookInstance: crypto.randomUUID(),
    fhirServer,
    fhirAuthorization: { access_token: 'client-token', token_type: 'Bearer', expires_in: 300, scope: 'patient/Observation.rs', subject: 'vbmd' },
    context: { userId: 'Practitioner/u1', patientId: 'p1' },
  });
  return { status: r.status, ms: r.ms, body: (r.body ?? {}) as { cards?: { summary: string }[] } };
}

describe('fhirServer allowlist per CDS client', () => {
  it('fetches from a listed FHIR base (loopback allowed because listed) with the client token', async () => {
    const n = calls.length;
    const r = await patientView(listedKey, `${fhirBase}/fhir/`);
    expect(r.status).toBe(200);
    expect(r.body.cards?.[0]?.summary).toContain('61.5 mg/cm3');
    // The patient-view card reads several keys (results, fractures, DXA...): every one from the listed server.
    expect(calls.slice(n).length).toBeGreaterThan(0);
    for (const c of calls.slice(n)) expect(c).toEqual(expect.objectContaining({ server: 'fhir', auth: 'Bearer client-token' }));
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
