import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import { startProxy } from '../dicomweb/proxy.js';
import type { TestProxy } from '../dicomweb/proxy.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { spawnVbmd, waitFor } from '../support/vbmd-process.js';
import type { VbmdProcess } from '../support/vbmd-process.js';

/**
 * From a complete study in the PACS to the result in FHIR, with real parts: Orthanc, `vbmd start` (web
 * process and its worker process), the FHIR server over HTTP.
 * - Push: Orthanc runs the shipped Lua script (src/jobs/orthanc/on-stable-study.lua) with StableAge 1 s;
 *   when it finds the study stable it calls the analyze API with the API token. Target: the result is in
 *   FHIR within 3 s of that call (the moment Orthanc declares the study complete), and the study costs one
 *   QIDO search and one retrieval (the PACS step's DICOM results included: it reuses the analysed volume).
 * - Poll: no push; an order-sign hook makes a watch, QIDO_POLL_INTERVAL_S=2 and QIDO_SETTLE_S=0.5. Target:
 *   the study is queued within one poll interval plus the settle time of its upload's end; the rest is the
 *   analysis and the write.
 * Each part first runs one warm-up study through the same service (the worker process loads the model and
 * compiles its code on the first study), then measures a second one. Numbers and the machine's load are
 * printed; this is a shared 2-core machine, so they are not a benchmark.
 */
const ROOT = resolve(__dirname, '../..');
const LUA = join(ROOT, 'src/jobs/orthanc/on-stable-study.lua');
const TOKEN = 'push-api-token';
const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.1';

interface Study {
  files: string[];
  studyUid: string;
  accession: string;
  patient: string;
}

let work: string;
let fhir: StartedFhirServer;
let key: CdsClientKey;
const fhirWrites: number[] = [];
const studies: Study[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-push-'));
  [fhir, key] = await Promise.all([
    startFhirServer({
      verifyAccess: async (req) => {
        if (req.method === 'POST' && req.path === '/') fhirWrites.push(Date.now());
        return { ok: true };
      },
    }),
    generateClientKey('https://ehr.push.test'),
  ]);
  for (const seed of [9201, 9202, 9203, 9204]) {
    const phantom = generatePhantom({ seed, levels: 'T11-L3', size: 256, sliceThicknessMm: 1.5, kvp: 120 });
    const written = await writePhantom(join(work, `p${seed}`), phantom);
    const meta = phantom.loaded.meta;
    const patient = `p-push-${seed}`;
    const put = await fetch(`${fhir.baseUrl}/Patient/${patient}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', id: patient, identifier: [{ system: MRN_SYSTEM, value: meta.patientId }] }),
    });
    expect(put.ok).toBe(true);
    studies.push({ files: written.files, studyUid: meta.studyInstanceUid!, accession: meta.accessionNumber!, patient });
  }
}, 300_000);

afterAll(async () => {
  await fhir?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** When the study's summary Observation became visible in FHIR (polled every 25 ms). */
async function resultVisible(s: Study, timeoutMs: number): Promise<number> {
  const url = `${fhir.baseUrl}/Observation?patient=Patient/${s.patient}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}`;
  return waitFor(`the result of study ${s.studyUid} in FHIR`, async () => {
    const b = (await (await fetch(url)).json()) as { entry?: { resource: unknown }[] };
    return (b.entry ?? []).some((e) => JSON.stringify(e.resource).includes(s.studyUid)) ? Date.now() : undefined;
  }, timeoutMs, 25);
}

async function job(base: string, s: Study): Promise<{ state: string; createdAt: string; finishedAt?: string; failedReason?: string }> {
  const res = await fetch(`${base}/api/jobs/study-${s.studyUid}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`no job for study ${s.studyUid} (${res.status})`);
  return (await res.json()) as { state: string; createdAt: string; finishedAt?: string; failedReason?: string };
}

async function finished(base: string, s: Study): Promise<{ createdAt: string; finishedAt?: string }> {
  return waitFor(`the job of study ${s.studyUid} to finish`, async () => {
    const j = await job(base, s);
    if (j.state === 'failed' || j.state === 'needs-review') throw new Error(`job ${j.state}: ${j.failedReason}`);
    return j.state === 'completed' ? j : undefined;
  }, 120_000, 50);
}

/** A DICOMweb request as the proxy saw it: when it came, when its answer ended, and for a QIDO series search
 * the instances the answer counted (NumberOfSeriesRelatedInstances summed over its series). */
interface Seen {
  start: number;
  end?: number;
  instances?: number;
}

const isSeriesSearch = (url: string): boolean => /^\/dicom-web\/series\?/.test(url);

/** DICOMweb requests of one study (by its UID or accession in the URL): QIDO searches and retrieves. */
function requestsFor(r: Running, from: number, s: Study): { qido: string[]; retrieve: number; seriesSearches: Seen[] } {
  const out = { qido: [] as string[], retrieve: 0, seriesSearches: [] as Seen[] };
  r.proxy.requests.forEach((req, i) => {
    if (i < from) return;
    const [rawPath, query = ''] = req.url.split('?');
    if (!req.url.includes(s.studyUid) && !req.url.includes(s.accession)) return;
    const path = rawPath!.replace(/^\/dicom-web/, '');
    if (req.method !== 'GET' || path.endsWith('/metadata')) return;
    if (/(^|\/)(studies|series|instances)$/.test(path)) out.qido.push(`${path.replace(/[0-9.]{8,}/g, '{uid}')}?${query.split('&').map((p) => p.split('=')[0]).filter((k) => k !== 'includefield').join('&')}`);
    else if (/\/studies\/[0-9.]+\/series\/[0-9.]+$/.test(path)) out.retrieve++;
    if (isSeriesSearch(req.url)) out.seriesSearches.push(r.seen[i]!);
  });
  return out;
}

interface Running {
  orthanc: OrthancHandle;
  proxy: TestProxy;
  /** Per request of `proxy.requests`, same index. */
  seen: Seen[];
  service: VbmdProcess;
  base: string;
}

async function startAll(orthancOptions: Parameters<typeof startOrthanc>[0] & {}, port: number, env: Record<string, string>): Promise<Running> {
  const orthanc = await startOrthanc(orthancOptions);
  const seen: Seen[] = [];
  const proxy = await startProxy(orthanc.baseUrl, (req, _res, forward, n) => {
    const rec: Seen = { start: Date.now() };
    seen[n - 1] = rec;
    const search = isSeriesSearch(req.url ?? '');
    forward({
      onResponse: (up, res) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => {
          if (search) chunks.push(c); // small JSON answers; retrievals are passed on unbuffered
          res.write(c);
        });
        up.on('end', () => {
          rec.end = Date.now();
          if (search && up.statusCode === 200) {
            const body = JSON.parse(Buffer.concat(chunks).toString() || '[]') as Record<string, { Value?: unknown[] }>[];
            rec.instances = body.reduce((sum, series) => sum + Number(series['00201209']?.Value?.[0] ?? 0), 0);
          } else if (search) rec.instances = 0; // 204: nothing yet
          res.end();
        });
      },
    });
  });
  const base = `http://127.0.0.1:${port}`;
  const service = spawnVbmd(['start'], {
    FHIR_BASE_URL: fhir.baseUrl,
    FHIR_BEARER_TOKEN: 'push-fhir-token',
    DICOMWEB_URL: `${proxy.url}/dicom-web`,
    CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
    ANALYZE_API_TOKENS: TOKEN,
    PATIENT_MRN_SYSTEM: MRN_SYSTEM,
    VBMD_DATA_DIR: join(work, `data-${port}`),
    PORT: String(port),
    PUBLIC_BASE_URL: base,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...env,
  });
  await waitFor('the service', async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined), 60_000);
  return { orthanc, proxy, seen, service, base };
}

async function stopAll(r: Running | undefined): Promise<void> {
  if (!r) return;
  await r.service.stop();
  await Promise.allSettled([r.proxy.close(), r.orthanc.stop()]);
}

/**
 * One warm-up study through the service (the worker loads the model and compiles on its first), then the
 * measured one: `before` runs ahead of each upload (the poll test's order-sign), and the proxy's request
 * count is taken just before the measured upload.
 */
async function warmThenMeasure(r: Running, warm: Study, measured: Study, before: (s: Study) => Promise<void> = async () => undefined) {
  await before(warm);
  await r.orthanc.upload(warm.files);
  await resultVisible(warm, 180_000);
  await finished(r.base, warm);
  await before(measured);
  const from = r.proxy.requests.length;
  const load1 = loadavg()[0]!;
  await r.orthanc.upload(measured.files);
  const uploadedAt = Date.now();
  const visibleAt = await resultVisible(measured, 60_000);
  const j = await finished(r.base, measured);
  return { from, load1, uploadedAt, visibleAt, j };
}

describe('push: Orthanc calls the analyze API when a study becomes stable', () => {
  let running: Running | undefined;
  afterAll(() => stopAll(running));

  it('the result is in FHIR within 3 s of the push, after one QIDO search and one retrieval', async () => {
    const port = await freeLoopbackPort();
    running = await startAll(
      { extraConfig: { LuaScripts: [LUA], StableAge: 1 }, env: { VBMD_URL: `http://127.0.0.1:${port}`, VBMD_API_TOKEN: TOKEN } },
      port,
      // No polling: the push is the only way the studies arrive.
      { QIDO_POLL_INTERVAL_S: '3600' },
    );
    const { base } = running;
    const measured = studies[1]!;
    const { from, load1, uploadedAt, visibleAt, j } = await warmThenMeasure(running, studies[0]!, measured);
    const pushedAt = Date.parse(j.createdAt);
    const writeAt = fhirWrites.find((t) => t >= pushedAt)!;
    const stableToResultMs = visibleAt - pushedAt;
    console.log(
      `push: last instance stored -> push ${pushedAt - uploadedAt} ms (StableAge 1 s + Orthanc's check), push -> FHIR write starts ${writeAt - pushedAt} ms, ` +
        `push -> result visible ${stableToResultMs} ms, last instance -> result ${visibleAt - uploadedAt} ms; load average ${load1.toFixed(1)} on 2 cores`,
    );
    const asked = requestsFor(running, from, measured);
    const searches = asked.seriesSearches.map((x) => ({ at: x.start - pushedAt, ms: x.end! - x.start, instances: x.instances }));
    console.log(`push: DICOMweb requests for the study: ${JSON.stringify({ ...asked, seriesSearches: searches })} (at: ms after the push)`);
    // One series search by StudyInstanceUID before the write (the PACS step's later searches are of the
    // result series it stores: by Modality SR/KO and their instances), and one retrieval in all.
    expect(asked.qido.filter((q) => q.startsWith('/series?'))).toEqual(['/series?StudyInstanceUID&Modality&limit']);
    expect(asked.retrieve).toBe(1);
    // The target: a complete study (Orthanc declares it stable and pushes) to the result in FHIR.
    expect(stableToResultMs).toBeLessThanOrEqual(3000);
  }, 600_000);
});

describe('poll: the study of a watched order is queued within one interval plus the settle time', () => {
  let running: Running | undefined;
  afterAll(() => stopAll(running));

  async function orderSign(base: string, s: Study): Promise<void> {
    const url = `${base}/cds-services/vbmd-order-sign`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` },
      body: JSON.stringify({
        hook: 'order-sign',
        hookInstance: crypto.randomUUID(),
        fhirServer: fhir.baseUrl,
        context: {
          userId: 'Practitioner/dr-push',
          patientId: s.patient,
          draftOrders: {
            resourceType: 'Bundle',
            entry: [{ resource: { resourceType: 'ServiceRequest', id: `sr-${s.patient}`, status: 'draft', intent: 'order', subject: { reference: `Patient/${s.patient}` }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '71250' }] }, identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: s.accession }] } }],
          },
        },
        prefetch: { vbmdObservations: { resourceType: 'Bundle', type: 'searchset', entry: [] } },
      }),
    });
    expect(res.status).toBe(200);
  }

  it('queued within 2 s + 0.5 s of the last instance, with two QIDO searches of the complete study and one retrieval', async () => {
    const port = await freeLoopbackPort();
    const intervalMs = 2000;
    const settleMs = 500;
    running = await startAll({}, port, { QIDO_POLL_INTERVAL_S: String(intervalMs / 1000), QIDO_SETTLE_S: String(settleMs / 1000) });
    const { base } = running;
    const measured = studies[3]!;
    const { from, load1, uploadedAt, visibleAt, j } = await warmThenMeasure(running, studies[2]!, measured, (s) => orderSign(base, s));
    const queuedAt = Date.parse(j.createdAt);
    console.log(
      `poll (interval ${intervalMs} ms, settle ${settleMs} ms): last instance stored -> queued ${queuedAt - uploadedAt} ms, queued -> result visible ${visibleAt - queuedAt} ms (analysis and write), ` +
        `last instance -> result ${visibleAt - uploadedAt} ms; load average ${load1.toFixed(1)} on 2 cores`,
    );
    const asked = requestsFor(running, from, measured);
    const looks = asked.seriesSearches.map((x) => ({ at: x.start - uploadedAt, ms: x.end! - x.start, instances: x.instances }));
    console.log(`poll: DICOMweb requests for the study: ${JSON.stringify({ ...asked, seriesSearches: looks })} (at: ms after the last instance)`);
    // Only series searches by accession before the write (the PACS step's later searches are of its own result
    // series), one after the other: the poller never looks at a watch twice at once.
    expect(asked.qido.filter((q) => q.startsWith('/series?')).every((q) => q === '/series?AccessionNumber&Modality&limit')).toBe(true);
    for (let i = 1; i < asked.seriesSearches.length; i++) expect(asked.seriesSearches[i]!.start).toBeGreaterThanOrEqual(asked.seriesSearches[i - 1]!.end!);
    // Exactly two searches saw the complete study: the first sight and the settle re-check that found the same
    // count. A search that came while the upload was still running saw part of it (or nothing) and is not
    // counted against the study: the poller cannot know the upload is over, so it must look again.
    const total = measured.files.length;
    expect(looks.map((l) => l.instances === total)).toEqual([...looks.slice(0, -2).map(() => false), true, true]);
    expect(looks.every((l) => l.instances! <= total)).toBe(true);
    expect(asked.retrieve).toBe(1);
    // The next round starts one interval after the previous one ended, and the re-check one settle time after
    // its first look ended: so besides interval + settle only the searches' own time (measured) may pass,
    // and 250 ms for the queue's write and a loaded machine's timers.
    const searchMs = looks.filter((l) => l.instances === total).reduce((sum, l) => sum + l.ms, 0);
    expect(queuedAt - uploadedAt).toBeLessThanOrEqual(intervalMs + settleMs + searchMs + 250);
  }, 600_000);
});
