import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import type { Request, Response } from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSmartApp } from '../../smart-app/build.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';
import { loadEnvConfig } from '../../src/config.js';
import { DEMO_PATIENT_IDS } from '../../src/sandbox/demo/patients.js';
import { createSandboxSmart } from '../../src/sandbox/smart-auth/index.js';
import type { SandboxSmart } from '../../src/sandbox/smart-auth/index.js';
import { launchChromium } from '../support/chromium.js';
import { axeSerious, openPage, waitState } from './harness.js';

/**
 * The app launched by an EHR on another origin, as the reference SMART launcher does it: the vbmd service
 * runs in sandbox mode (`vbmd start` with SMART_CONNECT_ORIGINS, SMART_FRAME_ANCESTORS, SMART_CLIENT_ID and
 * SANDBOX_ANONYMOUS_READ), and a second loopback server plays the EHR: its own SMART authorization server
 * (oidc-provider via src/sandbox/smart-auth, registering the app under the configured client id, advertising SMART v1
 * permissions only) and a FHIR proxy that checks its own tokens and reads the vbmd sandbox's synthetic data
 * anonymously. The EHR frames the app; the app must load and show the trend. A third origin that is not in
 * SMART_CONNECT_ORIGINS gets the error view that names the blocked origin and the setting.
 */
let dir = '';
let service: RunningService;
let vbmd = '';
let browser: Browser;
const servers: Server[] = [];
let ehr = '';
let stranger = '';
const authorizeQueries: Record<string, string>[] = [];
const anonymousReads: string[] = [];

async function listen(app: express.Express): Promise<string> {
  const s = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => s.once('listening', () => r()));
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** The EHR: authorization server + FHIR proxy onto the vbmd sandbox FHIR server (anonymous reads). */
async function mountEhr(app: express.Express, base: string, appOrigin: string): Promise<SandboxSmart> {
  const smart = await createSandboxSmart({
    issuerUrl: `${base}/auth`,
    fhirBaseUrl: `${base}/fhir`,
    appLaunchUrl: `${appOrigin}/smart/launch.html`,
    appRedirectUris: [`${appOrigin}/smart/index.html`],
    clientId: 'ehr-registered-vbmd',
    readResource: async (type, id) => {
      const res = await fetch(`${appOrigin}/fhir/${type}/${id}`);
      return res.ok ? res.json() : undefined;
    },
  });
  // A SMART v1 EHR: no permission-v2 in its capabilities.
  app.get('/fhir/.well-known/smart-configuration', (_req, res) => {
    const conf = smart.smartConfiguration();
    res.set('Access-Control-Allow-Origin', '*').json({ ...conf, capabilities: (conf.capabilities as string[]).filter((c) => c !== 'permission-v2') });
  });
  app.get('/auth/authorize', (req, _res, next) => {
    authorizeQueries.push(Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, String(v)])));
    next();
  });
  app.use(smart.router);
  app.use('/fhir', (req: Request, res: Response) => {
    res.set({ 'Access-Control-Allow-Origin': appOrigin, 'Access-Control-Allow-Headers': 'authorization, accept, content-type', Vary: 'Origin' });
    if (req.method === 'OPTIONS') return void res.status(204).end();
    void (async () => {
      const decision = await smart.verifyAccess(req);
      if (!decision.ok) return void res.status(decision.status).json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'security' }] });
      // What the reference launcher does: the EHR's own token checked, then the open sandbox server read.
      const upstream = await fetch(`${appOrigin}/fhir${req.url}`, { headers: { accept: 'application/fhir+json' } });
      anonymousReads.push(`${req.method} ${req.url.split('?')[0]} -> ${upstream.status}`);
      const body = (await upstream.text()).replaceAll(`${appOrigin}/fhir`, `${base}/fhir`);
      res.status(upstream.status).type('application/fhir+json').send(body);
    })().catch((e: unknown) => res.status(502).json({ error: String(e) }));
  });
  return smart;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vbmd-ehr-origin-'));
  const dist = join(dir, 'smart-dist');
  await buildSmartApp({ outDir: dist });
  const ehrApp = express();
  const strangerApp = express();
  ehr = await listen(ehrApp);
  stranger = await listen(strangerApp);
  service = await startService(
    loadEnvConfig({
      VBMD_DATA_DIR: join(dir, 'data'),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      RUN_WORKER: 'false',
      SMART_CONNECT_ORIGINS: ehr,
      SMART_FRAME_ANCESTORS: ehr,
      SMART_CLIENT_ID: 'ehr-registered-vbmd',
      SANDBOX_ANONYMOUS_READ: 'true',
    }),
    { quiet: true, skipDemoStudies: true, smartAppDist: dist },
  );
  vbmd = service.url!;
  await mountEhr(ehrApp, ehr, vbmd);
  await mountEhr(strangerApp, stranger, vbmd);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await service?.close();
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('launch from an EHR on another origin (sandbox mode)', () => {
  it('the service is a sandbox whose CSP lets that EHR frame the app and be called from it', async () => {
    expect(service.mode).toBe('sandbox');
    const res = await fetch(`${vbmd}/smart/index.html`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain(`connect-src 'self' ${ehr};`);
    expect(csp).toContain(`frame-ancestors 'self' ${ehr}`);
    expect(await (await fetch(`${vbmd}/smart/settings.json`)).json()).toEqual({ clientId: 'ehr-registered-vbmd', sandbox: true });
  });

  it('the EHR frames the app, which signs in at the EHR with v1 scopes under the configured client id and shows the trend', async () => {
    const { page, foreign } = await openPage(browser, [vbmd, ehr], { width: 1340, height: 900 });
    await page.goto(`${ehr}/sandbox/launch?patient=${DEMO_PATIENT_IDS.declining}`);
    const frame = page.frameLocator('iframe[title="vbmd bone density app"]');
    await frame.locator('body[data-state="ready"]').waitFor({ timeout: 20_000 });
    expect(await frame.getByTestId('trend-point').count()).toBeGreaterThan(1);
    expect(await frame.getByTestId('latest-value').textContent()).toMatch(/^\d+\.\d mg\/cm³$/);
    expect(await frame.getByTestId('trend-chart').count()).toBe(1);
    const auth = authorizeQueries.find((q) => q.launch);
    expect(auth?.client_id).toBe('ehr-registered-vbmd');
    expect(auth?.aud).toBe(`${ehr}/fhir`);
    expect(auth?.scope.split(' ')).toEqual(expect.arrayContaining(['launch', 'online_access', 'patient/Observation.read', 'patient/RiskAssessment.read']));
    expect(auth?.scope).not.toMatch(/\.rs\b/);
    // The app read through the EHR's proxy only; the proxy read the sandbox without a token.
    expect(anonymousReads.filter((r) => r.startsWith('GET /Observation'))).toEqual(['GET /Observation -> 200']);
    expect(foreign).toEqual([]);
    expect(await axeSerious(page)).toEqual([]);
    await page.context().close();
  });

  it('an EHR origin not in SMART_CONNECT_ORIGINS: the error view says the CSP blocked it and what to set', async () => {
    const { page } = await openPage(browser, [vbmd, stranger]);
    await page.goto(`${vbmd}/smart/launch.html?iss=${encodeURIComponent(`${stranger}/fhir`)}`);
    await waitState(page, /^error:blocked$/);
    expect(await page.getByTestId('state-error').locator('h2').textContent()).toBe('The app’s security policy blocked a request');
    expect(await page.getByTestId('error-detail').textContent()).toBe(
      `Details: The app's Content-Security-Policy (connect-src) blocked a request to ${stranger}. Set SMART_CONNECT_ORIGINS=${stranger} on the vbmd service (with any origins already there) and launch again.`,
    );
    expect(await axeSerious(page)).toEqual([]);
    await page.context().close();
  });
});
