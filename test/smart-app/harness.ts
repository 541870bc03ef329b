import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import { buildSmartApp } from '../../smart-app/build.js';
import { createSmartAppRouter } from '../../smart-app/server.js';
import type { AppLaunchSettings } from '../../smart-app/server.js';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { createFhirApp, TransactionalMemoryRepository } from '../../src/sandbox/fhir-server/index.js';
import { createSandboxSmart } from '../../src/sandbox/smart-auth/index.js';
import type { SandboxSmart } from '../../src/sandbox/smart-auth/index.js';
import type { makeReport } from './fixtures.js';

/**
 * The SMART app's real stack on one loopback origin, for the browser tests: the FHIR server (src/sandbox/fhir-server)
 * guarded by the sandbox SMART authorization server (src/sandbox/smart-auth), the built app under /smart. Launches go
 * through the real authorization flow (authorize, PKCE S256, token, refresh). Token and session lifetimes
 * and a fault in front of the FHIR server can be changed while it runs.
 */
export interface SmartStack {
  base: string;
  smart: SandboxSmart;
  repository: TransactionalMemoryRepository;
  /** Read at each token issue. */
  settings: { tokenTtlS: number; sessionTtlS: number };
  /** Status for every non-metadata FHIR request whose path matches `path` (all when null); null = none. */
  fault: { status: number | null; path: RegExp | null };
  fhirRequests: string[];
  fhirTimings: string[];
  close(): Promise<void>;
}

export async function startSmartStack(o: { patients: { id: string; label: string }[]; launch?: AppLaunchSettings }): Promise<SmartStack> {
  const distDir = await mkdtemp(join(tmpdir(), 'vbmd-smart-dist-'));
  const built = await buildSmartApp({ outDir: distDir });
  console.log(`SMART app build: ${built.ms.toFixed(0)} ms, app.js ${built.bytes['app.js']} B, launch.js ${built.bytes['launch.js']} B`);
  const repository = new TransactionalMemoryRepository();
  const app = express();
  app.disable('x-powered-by');
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const settings = { tokenTtlS: 300, sessionTtlS: 8 * 3600 };
  const fault: SmartStack['fault'] = { status: null, path: null };
  const fhirRequests: string[] = [];
  const fhirTimings: string[] = [];
  const smart = await createSandboxSmart({
    issuerUrl: `${base}/auth`,
    fhirBaseUrl: `${base}/fhir`,
    accessTokenTtlS: () => settings.tokenTtlS,
    sessionTtlS: () => settings.sessionTtlS,
    listPatients: async () => o.patients,
    readResource: (type, id) => repository.readResource(type, id),
  });
  app.use(smart.router);
  app.use(
    '/fhir',
    (req: Request, res: Response, next: NextFunction) => {
      fhirRequests.push(`${req.method} ${req.url}`);
      const t0 = performance.now();
      res.on('finish', () => fhirTimings.push(`${req.method} ${decodeURIComponent(req.url)} -> ${res.statusCode} in ${(performance.now() - t0).toFixed(0)} ms`));
      if (fault.status !== null && !req.path.startsWith('/metadata') && !req.path.startsWith('/.well-known') && (!fault.path || fault.path.test(req.path))) {
        res.status(fault.status).type('application/fhir+json').send(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] }));
        return;
      }
      next();
    },
    createFhirApp({ repository, verifyAccess: smart.verifyAccess }),
  );
  app.use('/smart', createSmartAppRouter({ distDir, ...(o.launch ? { launch: o.launch } : {}) }));
  // The same app as served outside the sandbox (no FHIR server of its own for a standalone launch).
  app.use('/smart-outside-sandbox', createSmartAppRouter({ distDir, launch: { clientId: o.launch?.clientId ?? 'vbmd-smart-app', sandbox: false } }));
  return {
    base,
    smart,
    repository,
    settings,
    fault,
    fhirRequests,
    fhirTimings,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await rm(distDir, { recursive: true, force: true });
    },
  };
}

/** Writes a patient and its vBMD results through the real FHIR mapping (an open FHIR app on the same
 * repository, so the guarded one sees exactly what a writer wrote). Returns the warm search time (ms). */
export async function seedPatient(
  repository: TransactionalMemoryRepository,
  patientId: string,
  reports: ReturnType<typeof makeReport>[],
  imagingStudy?: (i: number) => string | undefined,
): Promise<number> {
  const open = createFhirApp({ repository });
  const s = open.listen(0, '127.0.0.1');
  await new Promise<void>((r) => s.once('listening', () => r()));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  try {
    await fetch(`${url}/Patient/${patientId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', id: patientId, name: [{ given: ['Demo'], family: `Patient ${patientId}` }], gender: 'female', birthDate: '1961-04-02', identifier: [{ value: `MRN-${patientId}` }] }),
    }).then((r) => expect(r.status).toBeLessThan(300));
    for (const [i, report] of reports.entries()) {
      const study = imagingStudy?.(i);
      const bundle = buildAnalysisBundle(report, { patient: `Patient/${patientId}`, ...(study ? { imagingStudy: study } : {}) });
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    // Measure the app against a warm server (as in use): one search per patient after seeding, so a
    // first-paint number is not dominated by fhir-router's first-use work.
    const t0 = performance.now();
    await fetch(`${url}/Observation?subject=Patient/${patientId}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}&_count=200`);
    return Math.round(performance.now() - t0);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
}

export interface Opened {
  page: Page;
  /** Requests to any origin but `allowed`. */
  foreign: string[];
}

export async function openPage(browser: Browser, allowed: readonly string[], viewport = { width: 1280, height: 800 }): Promise<Opened> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const foreign: string[] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!allowed.includes(u.origin) && u.protocol !== 'data:') foreign.push(r.url());
  });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('response', (r) => {
    if (r.status() === 404) console.error('page request 404:', r.url());
  });
  return { page, foreign };
}

export async function waitState(page: Page, pattern: RegExp, timeout = 15_000): Promise<string> {
  try {
    await page.waitForFunction((src) => new RegExp(src).test(document.body.dataset.state ?? ''), pattern.source, { timeout });
  } catch (e) {
    const seen = await page.evaluate(() => ({ state: document.body?.dataset.state, text: document.body?.innerText.slice(0, 400) })).catch(() => null);
    throw new Error(`Page never reached state ${pattern} (at ${page.url()}: ${JSON.stringify(seen)})`, { cause: e });
  }
  return page.evaluate(() => document.body.dataset.state ?? '');
}

/** Serious and critical axe-core violations on the page (all frames of it: axe runs in the top document). */
export async function axeSerious(page: Page): Promise<{ id: string; impact: string; nodes: number }[]> {
  const require = createRequire(import.meta.url);
  const source = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated over the DevTools protocol: the app's CSP (script-src 'self') rightly blocks inline script tags.
  await page.evaluate(source);
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } }).axe;
    return axe.run(document, { resultTypes: ['violations'] });
  });
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
}

/** Elements that scroll on their own (content taller or wider than their box, with overflow auto/scroll). */
export async function noNestedScroll(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('body *')]
      .filter((e) => {
        const st = getComputedStyle(e);
        const scrolls = (v: string): boolean => v === 'auto' || v === 'scroll';
        return (scrolls(st.overflowY) && e.scrollHeight > e.clientHeight + 1) || (scrolls(st.overflowX) && e.scrollWidth > e.clientWidth + 1);
      })
      .map((e) => `${e.tagName.toLowerCase()}.${e.className}`),
  );
}
