import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import express from 'express';
import { createClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { loadCtValueSet } from '../../cds-hooks/ct-value-set.js';
import { SqliteFeedbackStore } from '../../cds-hooks/feedback-store.js';
import { MemoryReplayCache } from '../../cds-hooks/replay-cache.js';
import { createCdsHooksRouter } from '../../cds-hooks/router.js';
import { OVERRIDE_REASON_SYSTEM } from '../../cds-hooks/card-text.js';
import { SqliteWatchStore } from '../../src/jobs/watches.js';
import { VBMD_BASIS_CODES, VBMD_SUMMARY_CODE, VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';

/**
 * The CDS Hooks HTTP surface over a real loopback server: discovery, the three hooks, 412 / 400 / 404,
 * feedback stored and counted, CORS, watches recorded (SQLite in memory), FHIR fallback via fhirAuthorization.
 */
let server: Server;
let base: string;
let key: CdsClientKey;
let watches: SqliteWatchStore;
let feedback: SqliteFeedbackStore;
let fhirServer: Server;
let fhirBase: string;
const fhirCalls: { url: string; auth: string | undefined }[] = [];
/** The client may name the stand-in FHIR server (a loopback address, so it must be listed). */
const clientFhirServers = new Map<string, string[]>();

const obs = (id: string, date: string, value: number) => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { coding: [{ ...VBMD_SUMMARY_CODE }] },
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: date,
  valueQuantity: { value, unit: 'mg/cm3', system: 'http://unitsofmeasure.org', code: 'mg/cm3' },
  method: { coding: [{ ...VBMD_BASIS_CODES.lumbar }] },
});
const bundle = (...resources: object[]) => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });

async function post(path: string, body: unknown, opts: { raw?: string; auth?: boolean } = {}) {
  const url = `${base}${path}`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.auth === false ? {} : { authorization: `Bearer ${await signClientJwt(key, url)}` }) },
    body: opts.raw ?? JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null, headers: res.headers };
}

beforeAll(async () => {
  key = await generateClientKey('https://ehr.test');
  const db = new Database(':memory:');
  watches = new SqliteWatchStore(db);
  feedback = new SqliteFeedbackStore(db);
  server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const app = express();
  app.use(
    createCdsHooksRouter({
      publicBaseUrl: base,
      verifier: createClientJwtVerifier({
        clients: [{ iss: key.iss, jwks: { keys: [key.publicJwk as Record<string, unknown>] } }],
        replayCache: new MemoryReplayCache(),
        maxLifetimeS: 3600,
      }),
      valueSet: loadCtValueSet(),
      declinePctPerYear: 5,
      watches,
      watchTtlMs: 3600_000,
      feedback,
      clientFhirServers,
    }),
  );
  server.on('request', app);
  // A stand-in for the EHR's FHIR server, to check the fhirAuthorization fallback.
  const fhir = express();
  fhir.get('/fhir/Observation', (req, res) => {
    fhirCalls.push({ url: req.url, auth: req.get('authorization') });
    res.json(bundle(obs('f1', '2026-01-05T10:00:00Z', 61.5)));
  });
  fhir.get('/fhir/RiskAssessment', (_req, res) => void res.json(bundle()));
  await new Promise<void>((r) => (fhirServer = fhir.listen(0, '127.0.0.1', () => r())));
  fhirBase = `http://127.0.0.1:${(fhirServer.address() as { port: number }).port}/fhir`;
  clientFhirServers.set(key.iss, [fhirBase]);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => fhirServer.close(() => r()));
});

const orderSign = (code: string, accession?: string) => ({
  hook: 'order-sign',
  hookInstance: crypto.randomUUID(),
  context: {
    userId: 'Practitioner/u1',
    patientId: 'p1',
    draftOrders: {
      resourceType: 'Bundle',
      entry: [
        {
          resource: {
            resourceType: 'ServiceRequest',
            id: 'sr-9',
            status: 'draft',
            intent: 'order',
            code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code }] },
            ...(accession ? { identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: accession }] } : {}),
          },
        },
      ],
    },
  },
  prefetch: { vbmdObservations: bundle(obs('o1', '2025-06-01T10:00:00Z', 88.4)) },
});

describe('CDS Hooks service', () => {
  it('serves discovery with the three services and the vBMD prefetch templates', async () => {
    const url = `${base}/cds-services`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${await signClientJwt(key, url)}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const d = (await res.json()) as { services: { id: string; hook: string; prefetch: Record<string, string> }[] };
    expect(d.services.map((s) => [s.id, s.hook])).toEqual([
      ['vbmd-order-select', 'order-select'],
      ['vbmd-order-sign', 'order-sign'],
      ['vbmd-patient-view', 'patient-view'],
    ]);
    const pv = d.services[2]!.prefetch;
    expect(pv.vbmdObservations).toBe(`Observation?patient=Patient/{{context.patientId}}&code=${VBMD_SUMMARY_CODE_TOKEN}&_sort=-date&_count=20`);
    expect(pv.riskAssessments).toContain('RiskAssessment?patient=Patient/{{context.patientId}}');
  });

  it('answers a CORS preflight without credentials, and 401 without a JWT', async () => {
    const pre = await fetch(`${base}/cds-services/vbmd-patient-view`, { method: 'OPTIONS' });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toContain('Authorization');
    expect((await post('/cds-services/vbmd-patient-view', {}, { auth: false })).status).toBe(401);
  });

  it('order-sign for a chest CT: info card with the last result, and a watch with the accession', async () => {
    const r = await post('/cds-services/vbmd-order-sign', orderSign('71250', 'ACC-77'));
    expect(r.status).toBe(200);
    const cards = r.body!.cards as { indicator: string; summary: string }[];
    expect(cards).toHaveLength(1);
    expect(cards[0]!.indicator).toBe('info');
    expect(cards[0]!.summary).toBe('Bone density (vBMD) will be measured from this CT; last 88.4 mg/cm3 on 2025-06-01');
    const w = await watches.findByAccession('ACC-77');
    expect(w).toMatchObject({ patientId: 'p1', serviceRequestId: 'sr-9', accessionNumber: 'ACC-77', status: 'waiting', hook: 'order-sign' });
  });

  it('order-sign for a head CT: no card, no watch', async () => {
    const r = await post('/cds-services/vbmd-order-sign', orderSign('70450', 'ACC-HEAD'));
    expect(r.body).toEqual({ cards: [] });
    expect(await watches.findByAccession('ACC-HEAD')).toBeUndefined();
  });

  it('patient-view with prefetch: warning card with the value and a smart link', async () => {
    const r = await post('/cds-services/vbmd-patient-view', {
      hook: 'patient-view',
      hookInstance: crypto.randomUUID(),
      context: { userId: 'Practitioner/u1', patientId: 'p1' },
      prefetch: { vbmdObservations: bundle(obs('o2', '2026-02-01T10:00:00Z', 71.2)), riskAssessments: bundle() },
    });
    const card = (r.body!.cards as { uuid: string; indicator: string; summary: string; links: { type: string; url: string }[]; suggestions: { uuid: string }[] }[])[0]!;
    expect(card.indicator).toBe('warning');
    expect(card.summary).toContain('71.2 mg/cm3');
    expect(card.links[0]).toMatchObject({ type: 'smart', url: `${base}/smart/launch.html` });
    // Fresh uuids per card, and the service remembers them for feedback.
    expect(card.suggestions[0]!.uuid).not.toBe(card.uuid);
    const issued = await feedback.issued([card.uuid], Date.now());
    expect(issued.get(card.uuid)).toMatchObject({ serviceId: 'vbmd-patient-view', patientId: 'p1', observationId: 'o2', suggestions: [{ uuid: card.suggestions[0]!.uuid, kind: 'order-dxa' }] });
  });

  it('patient-view without prefetch: 412 without FHIR access; fetched with fhirAuthorization (token sent, card made)', async () => {
    const req = { hook: 'patient-view', hookInstance: crypto.randomUUID(), context: { userId: 'Practitioner/u1', patientId: 'p1' } };
    const r412 = await post('/cds-services/vbmd-patient-view', req);
    expect(r412.status).toBe(412);
    const r = await post('/cds-services/vbmd-patient-view', {
      ...req,
      fhirServer: fhirBase,
      fhirAuthorization: { access_token: 'tok-123', token_type: 'Bearer', expires_in: 300, scope: 'patient/Observation.rs', subject: 'vbmd' },
    });
    expect(r.status).toBe(200);
    expect((r.body!.cards as { summary: string }[])[0]!.summary).toContain('61.5 mg/cm3');
    expect(fhirCalls[0]!.auth).toBe('Bearer tok-123');
    expect(decodeURIComponent(fhirCalls[0]!.url)).toContain('patient=Patient/p1');
    // The client's token is never sent over plain http to a non-loopback host: treated as unreachable.
    const before = fhirCalls.length;
    const insecure = await post('/cds-services/vbmd-patient-view', {
      ...req,
      fhirServer: 'http://ehr.example.org/fhir',
      fhirAuthorization: { access_token: 'tok-456', token_type: 'Bearer', expires_in: 300, scope: 'patient/Observation.rs', subject: 'vbmd' },
    });
    expect(insecure.status).toBe(412);
    expect(fhirCalls.length).toBe(before);
  });

  it('400 with a clear message for a malformed body, wrong hook or bad JSON; 404 for an unknown service', async () => {
    const bad = await post('/cds-services/vbmd-patient-view', { hook: 'patient-view', hookInstance: 'x', context: { userId: 'u' } });
    expect(bad.status).toBe(400);
    expect(bad.body!.message).toContain('context.patientId');
    const wrongHook = await post('/cds-services/vbmd-patient-view', { hook: 'order-sign', hookInstance: 'x', context: { userId: 'u', patientId: 'p' } });
    expect(wrongHook.status).toBe(400);
    expect(wrongHook.body!.message).toContain('hook');
    const noServer = await post('/cds-services/vbmd-patient-view', {
      hook: 'patient-view',
      hookInstance: 'x',
      context: { userId: 'u', patientId: 'p' },
      fhirAuthorization: { access_token: 't', token_type: 'Bearer', expires_in: 1, scope: '', subject: 's' },
    });
    expect(noServer.status).toBe(400);
    expect(noServer.body!.message).toContain('fhirServer is required');
    const json = await post('/cds-services/vbmd-patient-view', null, { raw: '{"hook":' });
    expect(json.status).toBe(400);
    expect(json.body!.message).toContain('not valid JSON');
    expect((await post('/cds-services/nope', {})).status).toBe(404);
  });

  async function patientView(patientId: string, ...observations: object[]) {
    const r = await post('/cds-services/vbmd-patient-view', {
      hook: 'patient-view',
      hookInstance: crypto.randomUUID(),
      context: { userId: 'Practitioner/u1', patientId },
      prefetch: { vbmdObservations: bundle(...observations), riskAssessments: bundle() },
    });
    return r.body!.cards as { uuid: string; indicator: string; suggestions?: { uuid: string }[] }[];
  }
  const reason = (code: string) => ({ reason: { system: OVERRIDE_REASON_SYSTEM, code } });

  it('stores and counts feedback about the cards it issued, and refuses uuids it did not issue', async () => {
    const [a] = await patientView('pf1', obs('fa', '2026-02-01T10:00:00Z', 70));
    const [b] = await patientView('pf2', obs('fb', '2026-02-01T10:00:00Z', 71));
    const ok = await post('/cds-services/vbmd-patient-view/feedback', {
      feedback: [
        { card: a!.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: a!.suggestions![0]!.uuid }], outcomeTimestamp: '2026-11-26T10:00:00Z' },
        { card: b!.uuid, outcome: 'overridden', overrideReason: { ...reason('already-treated'), userComment: 'on denosumab' }, outcomeTimestamp: '2026-11-26T10:01:00Z' },
      ],
    });
    expect(ok.status).toBe(200);
    const at = '2026-11-26T10:02:00Z';
    const refused = [
      [{ card: 'made-up', outcome: 'accepted', outcomeTimestamp: at }, /made-up is not a card this service/],
      [{ card: a!.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: b!.suggestions![0]!.uuid }], outcomeTimestamp: at }, /is not a suggestion of card/],
      [{ card: a!.uuid, outcome: 'overridden', overrideReason: reason('no-such-reason'), outcomeTimestamp: at }, /not one of the card's override reasons/],
      [{ card: 'c3', outcome: 'ignored' }, /outcome/],
    ] as const;
    for (const [item, message] of refused) {
      const r = await post('/cds-services/vbmd-patient-view/feedback', { feedback: [item] });
      expect(r.status, JSON.stringify(item)).toBe(400);
      expect(String(r.body!.message)).toMatch(message);
    }
    // A card uuid of another service is not this service's card.
    expect((await post('/cds-services/vbmd-order-sign/feedback', { feedback: [{ card: a!.uuid, outcome: 'accepted', outcomeTimestamp: at }] })).status).toBe(400);
    const counts = await feedback.counts();
    expect(counts.total).toBe(2);
    expect(counts.byKey).toEqual([
      { serviceId: 'vbmd-patient-view', outcome: 'accepted', reason: null, count: 1 },
      { serviceId: 'vbmd-patient-view', outcome: 'overridden', reason: 'already-treated', count: 1 },
    ]);
  });

  it('an override with a reason quiets that patient\'s card until the period ends or a newer result arrives', async () => {
    const first = obs('q1', '2026-01-10T10:00:00Z', 70);
    const [card] = await patientView('pq', first);
    expect(card!.indicator).toBe('warning');
    // Without a reason: recorded, nothing quieted.
    await post('/cds-services/vbmd-patient-view/feedback', { feedback: [{ card: card!.uuid, outcome: 'overridden', outcomeTimestamp: '2026-11-26T10:00:00Z' }] });
    expect(await patientView('pq', first)).toHaveLength(1);
    const [again] = await patientView('pq', first);
    const r = await post('/cds-services/vbmd-patient-view/feedback', {
      feedback: [{ card: again!.uuid, outcome: 'overridden', overrideReason: reason('not-relevant-now'), outcomeTimestamp: '2026-11-26T10:00:00Z' }],
    });
    expect(r.status).toBe(200);
    expect(await patientView('pq', first)).toEqual([]);
    // Another patient is not quieted; a newer result of this patient shows again.
    expect(await patientView('pq-other', first)).toHaveLength(1);
    expect(await patientView('pq', first, obs('q2', '2026-06-10T10:00:00Z', 66))).toHaveLength(1);
    // The period ends (config CDS_OVERRIDE_QUIET_DAYS; 90 days by default).
    const quiet = await feedback.quietFor('vbmd-patient-view', 'pq', Date.now());
    expect(quiet!.untilMs - Date.now()).toBeGreaterThan(89 * 86_400_000);
    expect(await feedback.quietFor('vbmd-patient-view', 'pq', quiet!.untilMs)).toBeNull();
  });
});
