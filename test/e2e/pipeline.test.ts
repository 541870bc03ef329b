import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { OBSERVATIONS_PREFETCH, RISK_PREFETCH } from '../../cds-hooks/discovery.js';
import { fillTemplate } from '../../cds-hooks/prefetch.js';
import { loadEnvConfig } from '../../src/config.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { startRedis } from '../support/redis.js';
import { startProxy } from '../dicomweb/proxy.js';
import type { TestProxy } from '../dicomweb/proxy.js';
import type { RedisHandle } from '../support/redis.js';

/**
 * The product end to end with real parts: Orthanc (DICOMweb PACS), the FHIR server over HTTP, Redis +
 * BullMQ (then the embedded SQLite queue), the service in this process and the analysis worker in a child
 * process (`vbmd start --worker-only`), as radiology IT would run them.
 *
 * order-sign for a chest CT -> info card + watch; a phantom study with that accession and osteoporotic vBMD
 * arrives in Orthanc -> the worker's QIDO poll finds it and queues the analysis -> the worker is SIGKILLed
 * mid-job and restarted -> the job completes -> exactly one Observation and one RiskAssessment in FHIR ->
 * patient-view with prefetch gives a warning card with the value and a smart link.
 */
const ROOT = resolve(__dirname, '../..');
const TRUE_VBMD = { T11: 64, T12: 62, L1: 60, L2: 58, L3: 57 } as const;
const PATIENT = 'p-e2e';

let orthanc: OrthancHandle;
/** In front of Orthanc, forwarding everything: it counts the DICOMweb requests the service makes. */
let pacsCounter: TestProxy;
/** When each of pacsCounter.requests came in (ms since the epoch), in the same order. */
const requestTimes: number[] = [];
/** The FHIR requests the server received, with their time (the worker's result write among them). */
const fhirRequests: { at: number; method: string; path: string }[] = [];
let fhir: StartedFhirServer;
let redis: RedisHandle;
let work: string;
let key: CdsClientKey;
let study: { dir: string; accession: string; studyUid: string; files: string[] };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-e2e-'));
  [orthanc, fhir, redis, key] = await Promise.all([startOrthanc(), startFhirServer({
    verifyAccess: async (req) => {
      fhirRequests.push({ at: Date.now(), method: req.method, path: req.path });
      return { ok: true };
    },
  }), startRedis({ persistence: 'aof' }), generateClientKey('https://ehr.e2e.test')]);
  pacsCounter = await startProxy(orthanc.baseUrl, (_req, _res, forward) => {
    requestTimes.push(Date.now());
    forward();
  });
  const phantom = generatePhantom({ seed: 9101, levels: 'T11-L3', vbmdMgCm3: { ...TRUE_VBMD }, size: 256, sliceThicknessMm: 1.5, kvp: 120 });
  phantom.loaded.meta.acquisitionDateTime = new Date().toISOString().slice(0, 19);
  const written = await writePhantom(join(work, 'phantom'), phantom);
  study = { dir: written.dicomDir, accession: phantom.loaded.meta.accessionNumber!, studyUid: phantom.loaded.meta.studyInstanceUid!, files: written.files };
  const put = await fetch(`${fhir.baseUrl}/Patient/${PATIENT}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    // The hospital MRN the PACS stores as PatientID: the worker checks the study belongs to this Patient.
    body: JSON.stringify({
      resourceType: 'Patient',
      id: PATIENT,
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.9999.1', value: phantom.loaded.meta.patientId }],
      name: [{ family: 'E2E', given: ['Test'] }],
    }),
  });
  expect(put.ok).toBe(true);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([pacsCounter?.close(), orthanc?.stop(), fhir?.close(), redis?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

function env(variant: 'redis' | 'embedded', dataDir: string, port: number): Record<string, string> {
  return {
    FHIR_BASE_URL: fhir.baseUrl,
    FHIR_BEARER_TOKEN: 'e2e-fhir-token',
    DICOMWEB_URL: `${pacsCounter.url}/dicom-web`,
    CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
    ANALYZE_API_TOKENS: 'e2e-api-token',
    VBMD_DATA_DIR: dataDir,
    // A production start needs the URL clients call (the CDS JWT audience), so the port is chosen first.
    PORT: String(port),
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    HOST: '127.0.0.1',
    QIDO_POLL_INTERVAL_S: '0.5',
    JOB_LEASE_S: '3',
    JOB_BACKOFF_MS: '200',
    LOG_LEVEL: 'warn',
    ...(variant === 'redis' ? { REDIS_URL: redis.url } : {}),
  };
}

function startWorker(vars: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'start', '--worker-only'], {
    cwd: ROOT,
    env: { ...process.env, ...vars },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => {
    const s = d.toString();
    if (/error|fail/i.test(s)) process.stderr.write(`[worker ${child.pid}] ${s}`);
  });
  return child;
}

async function stopWorker(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** DICOMweb requests by kind (PS3.18): QIDO-RS searches, WADO-RS metadata, WADO-RS retrieves, STOW-RS. */
function dicomWebCounts(from: number, before = Infinity, notBefore = -Infinity): { qido: string[]; metadata: number; retrieve: number; stow: number } {
  const out = { qido: [] as string[], metadata: 0, retrieve: 0, stow: 0 };
  pacsCounter.requests.forEach((r, i) => {
    if (i < from || requestTimes[i]! >= before || requestTimes[i]! < notBefore) return;
    const [rawPath, query = ''] = r.url.split('?');
    const path = rawPath!.replace(/^\/dicom-web/, '');
    if (r.method === 'POST') out.stow++;
    else if (path.endsWith('/metadata')) out.metadata++;
    else if (/(^|\/)(studies|series|instances)$/.test(path)) out.qido.push(`${path.replace(/[0-9.]{8,}/g, '{uid}')}?${query.split('&').filter((p) => !p.startsWith('includefield')).map((p) => p.split('=')[0]).join('&')}`);
    else out.retrieve++;
  });
  return out;
}

async function fhirSearch(query: string): Promise<{ resourceType: string; id: string; [k: string]: unknown }[]> {
  const res = await fetch(`${fhir.baseUrl}/${query}`, { headers: { accept: 'application/fhir+json' } });
  const b = (await res.json()) as { entry?: { resource: { resourceType: string; id: string } }[] };
  return (b.entry ?? []).map((e) => e.resource);
}

describe.each([['Redis + BullMQ', 'redis'] as const, ['embedded SQLite queue', 'embedded'] as const])('end to end with %s', (_label, variant) => {
  let service: RunningService;
  let worker: ChildProcess | undefined;

  afterAll(async () => {
    if (worker) await stopWorker(worker, 'SIGKILL');
    await service?.close();
  });

  it('order-sign -> study arrives in Orthanc -> worker killed mid-job and restarted -> FHIR results once -> patient-view warning card', async () => {
    const dataDir = join(work, `data-${variant}`);
    const vars = env(variant, dataDir, await freeLoopbackPort());
    service = await startService(loadEnvConfig({ ...vars, RUN_WORKER: 'false' }), { quiet: true });
    const base = service.url!;
    expect(service.mode).toBe('production');
    expect(service.stores.kind).toBe(variant);
    const call = async (path: string, body: unknown) => {
      const url = `${base}${path}`;
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { cards: { indicator: string; summary: string; detail: string; links?: { type: string; url: string }[] }[] } };
    };
    const ready = await fetch(`${base}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready' });

    // 1. The order is signed: info card, watch recorded. (In the second variant the first run's result is
    // already in FHIR: the card then shows it as the last result.)
    const srId = `sr-${variant}`;
    const signed = await call('/cds-services/vbmd-order-sign', {
      hook: 'order-sign',
      hookInstance: crypto.randomUUID(),
      fhirServer: fhir.baseUrl,
      context: {
        userId: 'Practitioner/dr-e2e',
        patientId: PATIENT,
        draftOrders: {
          resourceType: 'Bundle',
          entry: [
            {
              resource: {
                resourceType: 'ServiceRequest',
                id: srId,
                status: 'draft',
                intent: 'order',
                subject: { reference: `Patient/${PATIENT}` },
                code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '71250' }] },
                identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: study.accession }],
              },
            },
          ],
        },
      },
      prefetch: { vbmdObservations: { resourceType: 'Bundle', type: 'searchset', entry: (await fhirSearch(`Observation?patient=Patient/${PATIENT}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}`)).map((resource) => ({ resource })) } },
    });
    expect(signed.status).toBe(200);
    expect(signed.body.cards).toHaveLength(1);
    expect(signed.body.cards[0]!.indicator).toBe('info');
    expect(signed.body.cards[0]!.summary).toContain('will be measured from this CT');
    const watch = await service.stores.watches.findByAccession(study.accession);
    expect(watch).toMatchObject({ patientId: PATIENT, serviceRequestId: srId, status: 'waiting' });

    // 2. The study arrives in the PACS (first variant only; the second finds it already there).
    if (variant === 'redis') await orthanc.upload(study.files);
    const counted = pacsCounter.requests.length;
    const countedAt = Date.now();

    // 3. The worker (a child process) polls QIDO, queues the job and starts it; we kill it mid-job.
    const jobId = `study-${study.studyUid}`;
    const jobState = async () => {
      const res = await fetch(`${base}/api/jobs/${jobId}`, { headers: { authorization: 'Bearer e2e-api-token' } });
      return res.status === 200 ? ((await res.json()) as { state: string; attempts: number; failedReason?: string }) : undefined;
    };
    worker = startWorker(vars);
    await waitFor('the job to become active', async () => ((await jobState())?.state === 'active' ? true : undefined), 90_000, 20);
    // The poller queues the job, then marks the watch queued (in that order, so that a crash between the two
    // costs one more poll rather than a lost study). The worker in the same process can take the job before
    // the mark lands; a kill in that gap makes the next worker poll the study again (twice more, and the
    // queue drops the duplicate job). This test is about a kill mid-job, so it waits for the mark.
    await waitFor('the watch to be marked queued', async () => ((await service.stores.watches.get(watch!.id))?.status !== 'waiting' ? true : undefined), 10_000, 5);
    await stopWorker(worker, 'SIGKILL');
    const afterKill = await jobState();
    expect(afterKill?.state).not.toBe('completed');

    // 4. A new worker takes the job again once the dead one's lease/lock runs out, and completes it.
    worker = startWorker(vars);
    const done = await waitFor(
      'the job to complete',
      async () => {
        const j = await jobState();
        if (j?.state === 'failed') throw new Error(`job failed: ${j.failedReason}`);
        return j?.state === 'completed' ? j : undefined;
      },
      120_000,
      100,
    );
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect((await service.stores.watches.get(watch!.id))?.status).toBe('found');

    // 5. FHIR holds exactly one result set for the study, whatever ran twice.
    const observations = await fhirSearch(`Observation?patient=Patient/${PATIENT}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}`);
    const forStudy = observations.filter((o) => JSON.stringify(o).includes(study.studyUid));
    expect(forStudy).toHaveLength(1);
    const value = (forStudy[0] as unknown as { valueQuantity: { value: number } }).valueQuantity.value;
    expect(value).toBeLessThan(80);
    expect(Math.abs(value - (TRUE_VBMD.L1 + TRUE_VBMD.L2) / 2)).toBeLessThan(15);
    // The first run wrote it, linked to its order; the second run's identical write created nothing.
    expect(JSON.stringify(forStudy[0])).toContain('ServiceRequest/sr-redis');
    // 5b. The PACS was asked as little as the study record allows, up to the FHIR write: the two polls
    // (the study seen, then seen with the same instance count: stability) each ONE series search by
    // accession that brings the patient identity and the series; the worker searched nothing again; one
    // retrieval per job attempt that got that far (the first attempt was killed). What the PACS step asks
    // afterwards (what result series it holds already, the source series' attributes, STOW) is logged.
    // The write begins with the worker's first FHIR request after the patient check and the retrieval's
    // AuditEvent: a search for the study's earlier results, then the transaction (none when, as in the
    // second variant, everything is there already).
    const writtenAt = fhirRequests.find((r) => r.at >= countedAt && !r.path.startsWith('/Patient/') && r.path !== '/AuditEvent')?.at;
    expect(writtenAt).toBeDefined();
    const beforeWrite = dicomWebCounts(counted, writtenAt!);
    console.log(`DICOMweb requests for the study (${variant}), before the FHIR write: ${JSON.stringify(beforeWrite)}; after it (PACS step): ${JSON.stringify(dicomWebCounts(counted, Infinity, writtenAt!))}`);
    expect(beforeWrite.qido).toEqual(['/series?AccessionNumber&Modality&limit', '/series?AccessionNumber&Modality&limit']);
    expect(beforeWrite.metadata).toBe(0);
    expect(beforeWrite.retrieve).toBeGreaterThanOrEqual(1);
    expect(beforeWrite.retrieve).toBeLessThanOrEqual(done.attempts);
    const risks = await fhirSearch(`RiskAssessment?patient=Patient/${PATIENT}`);
    expect(risks.filter((r) => JSON.stringify(r).includes(`Observation/${forStudy[0]!.id}`))).toHaveLength(1);

    // 6. The oncologist opens the chart: patient-view with prefetch (filled like an EHR would).
    const context = { userId: 'Practitioner/dr-e2e', patientId: PATIENT };
    const prefetch = {
      vbmdObservations: await (await fetch(`${fhir.baseUrl}/${fillTemplate(OBSERVATIONS_PREFETCH, context)!}`)).json(),
      riskAssessments: await (await fetch(`${fhir.baseUrl}/${fillTemplate(RISK_PREFETCH, context)!}`)).json(),
    };
    const viewed = await call('/cds-services/vbmd-patient-view', { hook: 'patient-view', hookInstance: crypto.randomUUID(), context, prefetch });
    expect(viewed.status).toBe(200);
    const card = viewed.body.cards[0]!;
    expect(card.indicator).toBe('warning');
    expect(card.summary).toContain(`${value.toFixed(1)} mg/cm3`);
    expect(card.links?.[0]).toMatchObject({ type: 'smart', url: `${base}/smart/launch.html` });
  }, 300_000);
});
