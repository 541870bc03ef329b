import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSmartApp } from '../../smart-app/build.js';
import { cspAdvice, parseCspReport } from '../../smart-app/csp-report.js';
import type { CspReport } from '../../smart-app/csp-report.js';
import { createSmartAppRouter } from '../../smart-app/server.js';
import { launchChromium } from '../support/chromium.js';

/**
 * What the app's CSP blocks is reported by the browser to /smart/csp-report: a frame the EHR may not show
 * (frame-ancestors), which the app itself can never explain, and a call to an origin not allowed
 * (connect-src). Real Chromium, two loopback origins: the app's and an EHR's that is not configured.
 */
let dir = '';
let browser: Browser;
const servers: Server[] = [];
const reports: CspReport[] = [];
let app = '';
let ehr = '';

async function listen(a: express.Express): Promise<string> {
  const s = a.listen(0, '127.0.0.1');
  await new Promise<void>((r) => s.once('listening', () => r()));
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vbmd-csp-report-'));
  await buildSmartApp({ outDir: dir });
  app = await listen(express().use('/smart', createSmartAppRouter({ distDir: dir, onCspReport: (r) => reports.push(r) })));
  ehr = await listen(
    express().get('/chart', (_req, res) => {
      res.type('html').send(`<!doctype html><title>EHR</title><iframe title="app" src="${app}/smart/index.html"></iframe>`);
    }),
  );
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('CSP violation reports', () => {
  it('reads a report into a directive and an origin only, and refuses anything else', () => {
    const r = parseCspReport({ 'csp-report': { 'effective-directive': 'connect-src', 'blocked-uri': 'https://auth.ehr.example.org/token?code=secret' } });
    expect(r).toEqual({ directive: 'connect-src', blockedOrigin: 'https://auth.ehr.example.org' });
    expect(cspAdvice(r!)).toBe('The SMART app was blocked from calling https://auth.ehr.example.org: add it to SMART_CONNECT_ORIGINS.');
    expect(parseCspReport({ 'csp-report': { 'violated-directive': 'frame-ancestors http://x' } })).toEqual({ directive: 'frame-ancestors', blockedOrigin: 'unknown' });
    expect(parseCspReport({ 'csp-report': { 'effective-directive': 'connect-src; drop table' } })).toBeNull();
    expect(parseCspReport({ nope: 1 })).toBeNull();
  });

  it('Chromium reports a frame the app refused (frame-ancestors) and a blocked call (connect-src)', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${ehr}/chart`);
    await expect.poll(() => reports.some((r) => r.directive === 'frame-ancestors'), { timeout: 10_000 }).toBe(true);
    await page.goto(`${app}/smart/launch.html?iss=${encodeURIComponent(`${ehr}/fhir`)}`);
    await expect.poll(() => reports.find((r) => r.directive === 'connect-src'), { timeout: 10_000 }).toEqual({ directive: 'connect-src', blockedOrigin: ehr });
    await context.close();
  });
});
