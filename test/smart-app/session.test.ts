import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { decliningSeries } from './fixtures.js';
import { openPage, seedPatient, startSmartStack, waitState } from './harness.js';
import type { SmartStack } from './harness.js';

/**
 * The app's EHR session in real Chromium against the sandbox authorization server: the app asks for
 * `online_access`, renews its short access tokens silently with the refresh token, and when the session does
 * end (the authorization server refuses the refresh) it keeps the results on screen, says how old they are
 * and offers a relaunch, which works.
 *
 * The long test runs 10 minutes with 1-minute access tokens, as an EHR session of a clinic visit would; it
 * waits most of that time, so it adds about its own length to `npm test` (other files run beside it).
 * VBMD_SESSION_TEST_S and VBMD_SESSION_TOKEN_S shorten it for work on this file (e.g. 120 and 10). Its name
 * says which ran.
 */
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'smart');
const END = Date.UTC(2026, 9, 1);
const LONG_S = Number(process.env.VBMD_SESSION_TEST_S ?? 600);
const LONG_TOKEN_S = Number(process.env.VBMD_SESSION_TOKEN_S ?? 60);

let stack: SmartStack;
let browser: Browser;

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  stack = await startSmartStack({ patients: [{ id: 'p-stable', label: 'Demo Patient p-stable' }] });
  await seedPatient(stack.repository, 'p-stable', decliningSeries('9202', 5, 3, 150, 147, END));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

/** Token requests the page makes, by grant type, and the bearer tokens it sends to the FHIR server. */
function watchTokens(page: Page): { grants: string[]; bearers: Set<string> } {
  const grants: string[] = [];
  const bearers = new Set<string>();
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/auth/token' && r.method() === 'POST') grants.push(new URLSearchParams(r.postData() ?? '').get('grant_type') ?? '?');
    const auth = r.headers().authorization;
    if (u.pathname.startsWith('/fhir/') && auth) bearers.add(auth);
  });
  return { grants, bearers };
}

describe('SMART app session', () => {
  it('when the session ends (refresh refused), keeps the results on screen and offers a relaunch that works', async () => {
    const { page } = await openPage(browser, [stack.base]);
    const tokens = watchTokens(page);
    // 5-second access tokens in a 9-second session: one or two silent refreshes, then a refused one.
    stack.settings.tokenTtlS = 5;
    stack.settings.sessionTtlS = 9;
    try {
      await page.goto(`${stack.base}/sandbox/launch?patient=p-stable&open=redirect`);
      await waitState(page, /^ready$/);
      await page.waitForFunction(() => document.body.dataset.session === 'ended', undefined, { timeout: 30_000 });
    } finally {
      stack.settings.tokenTtlS = 300;
      stack.settings.sessionTtlS = 8 * 3600;
    }
    expect(tokens.grants[0]).toBe('authorization_code');
    expect(tokens.grants.filter((g) => g === 'refresh_token').length).toBeGreaterThanOrEqual(2);
    // What was on screen stays: the trend, the value, the category; marked as no longer updated.
    expect(await waitState(page, /^ready$/)).toBe('ready');
    expect(await page.getByTestId('trend-point').count()).toBe(5);
    expect(await page.getByTestId('latest-value').textContent()).toBe('147.0 mg/cm³');
    expect(await page.getByTestId('session-ended').textContent()).toMatch(/^Your session with the EHR has ended\. The results below are as loaded at \d\d:\d\d; they are not updated\./);
    expect(await page.getByRole('button', { name: 'Reload data' }).isHidden()).toBe(true);
    const relaunch = page.getByTestId('relaunch');
    expect(await relaunch.getAttribute('href')).toBe(`${stack.base}/smart/launch.html?iss=${encodeURIComponent(`${stack.base}/fhir`)}`);
    await page.screenshot({ path: join(ARTIFACTS, 'session-ended.png') });
    // The relaunch is a standalone launch at the same EHR: it asks for the patient and opens the app again.
    await relaunch.click();
    await page.waitForURL(/\/auth\/interaction\//);
    await page.getByLabel('Patient').selectOption('p-stable');
    await page.getByRole('button', { name: 'Allow and open' }).click();
    await waitState(page, /^ready$/);
    expect(await page.evaluate(() => document.body.dataset.session)).toBe('active');
    expect(await page.getByTestId('trend-point').count()).toBe(5);
    await page.context().close();
  }, 60_000);

  it(`stays signed in for ${LONG_S} s with ${LONG_TOKEN_S}-second access tokens, refreshed silently`, async () => {
    const { page } = await openPage(browser, [stack.base]);
    const tokens = watchTokens(page);
    stack.settings.tokenTtlS = LONG_TOKEN_S;
    const t0 = Date.now();
    const reloads: number[] = [];
    try {
      await page.goto(`${stack.base}/sandbox/launch?patient=p-stable&open=redirect`);
      await waitState(page, /^ready$/);
      // Reload at 1.3 token lifetimes: every reload after the first needs a token the app renewed itself.
      const every = Math.max(2_000, LONG_TOKEN_S * 1300);
      while (Date.now() - t0 < LONG_S * 1000) {
        await page.waitForTimeout(Math.min(every, Math.max(0, LONG_S * 1000 - (Date.now() - t0))));
        await page.evaluate(() => document.body.removeAttribute('data-state'));
        await page.getByRole('button', { name: 'Reload data' }).click();
        await waitState(page, /^ready$/);
        expect(await page.evaluate(() => document.body.dataset.session)).toBe('active');
        expect(await page.getByTestId('trend-point').count()).toBe(5);
        reloads.push(Date.now() - t0);
      }
    } finally {
      stack.settings.tokenTtlS = 300;
    }
    const refreshes = tokens.grants.filter((g) => g === 'refresh_token').length;
    console.log(`session: ${((Date.now() - t0) / 1000).toFixed(0)} s, ${LONG_TOKEN_S}-s tokens, ${reloads.length} reloads, ${refreshes} silent refreshes, ${tokens.bearers.size} access tokens used`);
    expect(await page.getByTestId('session-ended').count()).toBe(0);
    expect(reloads.length).toBeGreaterThanOrEqual(Math.floor(LONG_S / (LONG_TOKEN_S * 1.3)) - 1);
    // Renewed at least once per lifetime, never by a new launch.
    expect(tokens.grants.filter((g) => g === 'authorization_code')).toHaveLength(1);
    expect(refreshes).toBeGreaterThanOrEqual(Math.floor(LONG_S / LONG_TOKEN_S) - 1);
    expect(tokens.bearers.size).toBeGreaterThanOrEqual(reloads.length);
    expect(stack.fhirTimings.filter((t) => t.includes('-> 401'))).toEqual([]);
    await page.context().close();
  }, LONG_S * 1000 + 90_000);
});
