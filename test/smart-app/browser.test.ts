import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { decliningSeries, makeReport } from './fixtures.js';
import { axeSerious, noNestedScroll, openPage as open, seedPatient, startSmartStack, waitState } from './harness.js';
import type { Opened, SmartStack } from './harness.js';

/**
 * The SMART app in real Chromium against the real stack on one loopback origin (harness.ts): the FHIR
 * server guarded by the sandbox SMART authorization server, the built app under /smart. Launches go through
 * the real authorization flow (authorize, PKCE S256, token). Screenshots go to test-artifacts/smart/.
 */

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'smart');
const END = Date.UTC(2026, 9, 1);

let stack: SmartStack;
let base = '';
let browser: Browser;
const seedSearchMs: number[] = [];

const declining = decliningSeries('9001', 40, 10, 160, 70, END);
const stable = decliningSeries('9002', 5, 3, 150, 147, END);

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  stack = await startSmartStack({
    patients: [
      { id: 'p-stable', label: 'Demo Patient p-stable' },
      { id: 'p-decline', label: 'Demo Patient p-decline' },
    ],
  });
  base = stack.base;
  const { repository } = stack;
  seedSearchMs.push(await seedPatient(repository, 'p-decline', declining, (i) => (i === 20 ? 'ImagingStudy/study-20' : undefined)));
  seedSearchMs.push(await seedPatient(repository, 'p-stable', stable));
  await seedPatient(repository, 'p-empty', []);
  await seedPatient(repository, 'p-thoracic', [
    makeReport({
      studyUid: '1.2.826.0.1.3680043.8.498.9003.1',
      acquired: '2026-05-04T10:00:00Z',
      levels: [
        { level: 'T10', vbmd: 300, excluded: 'lesion' },
        { level: 'T11', vbmd: 92 },
        { level: 'T12', vbmd: 88 },
      ],
      basis: 'thoracic-extrapolated',
      calibration: 'nominal',
      contrast: true,
    }),
  ]);
  // A result found by polling names its study by DICOM UID only; the EHR's launch context names the
  // ImagingStudy resource, whose identifier carries that UID.
  const uid = '1.2.826.0.1.3680043.8.498.9004.2';
  await seedPatient(stack.repository, 'p-uid', [
    makeReport({ studyUid: '1.2.826.0.1.3680043.8.498.9004.1', acquired: '2025-02-01T10:00:00Z', levels: [{ level: 'L1', vbmd: 131 }, { level: 'L2', vbmd: 127 }] }),
    makeReport({ studyUid: uid, acquired: '2025-09-01T10:00:00Z', levels: [{ level: 'L1', vbmd: 118 }, { level: 'L2', vbmd: 114 }] }),
    makeReport({ studyUid: '1.2.826.0.1.3680043.8.498.9004.3', acquired: '2026-04-01T10:00:00Z', levels: [{ level: 'L1', vbmd: 110 }, { level: 'L2', vbmd: 104 }] }),
  ]);
  await stack.repository.createResource({
    resourceType: 'ImagingStudy',
    id: 'polled-study',
    status: 'available',
    subject: { reference: 'Patient/p-uid' },
    identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uid}` }],
  } as never);
  console.log(`FHIR server search after seeding, per patient (first is cold): ${seedSearchMs.join(', ')} ms`);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const openPage = (): Promise<Opened> => open(browser, [base]);

async function ehrLaunch(page: Page, query: string): Promise<void> {
  await page.goto(`${base}/sandbox/launch?${query}&open=redirect`);
}

function latestOf(reports: ReturnType<typeof makeReport>[]): number {
  return reports[reports.length - 1].summary.vbmd as number;
}

describe('SMART app in Chromium', () => {
  it('EHR launch: trend of 40 studies with ACR bands, latest value and category from FHIR, alerts, banner; fast first paint', async () => {
    const { page, foreign } = await openPage();
    stack.fhirTimings.length = 0;
    await ehrLaunch(page, 'patient=p-decline');
    await waitState(page, /^ready$/);
    expect(new URL(page.url()).pathname).toBe('/smart/index.html');

    expect(await page.locator('[data-testid="trend-point"]').count()).toBe(40);
    for (const band of ['osteoporosis', 'osteopenia', 'normal']) {
      expect(await page.locator(`svg [data-band="${band}"]`).count()).toBe(1);
    }
    const labels = await page.locator('svg .band-label').allTextContents();
    expect(labels).toEqual(['Osteoporosis range < 80', 'Low bone density (osteopenia) range 80–120', 'Normal range > 120']);
    // The rate's studies: a shaded window holding exactly the points of the last 3 years, with the fitted line.
    const win = await page.getByTestId('rate-window').boundingBox();
    const inWindow = await page.locator('[data-testid="trend-point"]').evaluateAll((els, w) => {
      const box = w as { x: number; width: number };
      return els.filter((e) => {
        const r = e.getBoundingClientRect();
        const cx = r.x + r.width / 2;
        return cx >= box.x && cx <= box.x + box.width;
      }).length;
    }, win);
    expect(await page.getByTestId('rate').textContent()).toMatch(new RegExp(`least squares over the ${inWindow} studies from .* \\(shaded on the chart\\)`));
    // 40 studies 10/39 years apart: the last 3 years hold the latest and the 11 before it.
    expect(inWindow).toBe(12);
    expect(await page.getByTestId('fit-line').count()).toBe(1);
    expect(await page.getByTestId('chart-legend').locator('li > span').allTextContents()).toEqual([
      'Summary vBMD, one point per CT study',
      'Shaded: the 12 studies the rate of change uses',
      'Fitted line (least squares)',
    ]);

    const latest = latestOf(declining);
    expect(latest).toBe(70);
    expect(await page.getByTestId('latest-value').textContent()).toBe(`${latest.toFixed(1)} mg/cm³`);
    expect(await page.getByTestId('latest-category').textContent()).toBe('Osteoporosis range');
    // The card's headline, word for word (src/fhir/result-words.ts).
    expect(await page.getByTestId('alert-osteoporosis').textContent()).toMatch(/^Osteoporosis range: vBMD 70\.0 mg\/cm³ on CT of \d+ \w+ 2026\. Opportunistic measurement from a routine CT/);
    // 160 -> 70 over 10 years is 9 mg/cm3/yr; within the last 3 years the fitted baseline is ~97, so ~-9.3 %/yr.
    const decline = await page.getByTestId('alert-decline').textContent();
    expect(decline).toMatch(/−9\.0 mg\/cm³ per year \(−9\.\d % per year\)/);
    // The decline is called one only beyond the least significant change; the last step alone is within it.
    expect(decline).toContain('beyond the least significant change');
    expect(await page.getByTestId('change').textContent()).toMatch(/^Since the previous study \([^)]+\): −\d+\.\d mg\/cm3 \(−\d+\.\d%\): within measurement error \(least significant change 10\.0%\)\.$/);
    expect(await page.getByTestId('patient-banner').textContent()).toContain('Demo Patient p-decline');
    expect(await page.getByTestId('levels-table').locator('tbody tr').allTextContents()).toEqual([
      'T1274.0 mg/cm³Measured, not in the summary',
      'L172.0 mg/cm³In the summary',
      'L268.0 mg/cm³In the summary',
    ]);
    expect(await page.getByTestId('model').textContent()).toContain('vbmd-resunet3d 1.2.0');
    expect(await page.getByTestId('calibration').textContent()).toContain('phantomless internal calibration');

    const timing = await page.waitForFunction(() => window.__vbmd?.tokenToTrendMs, undefined, { timeout: 5000 }).then((h) => h.jsonValue());
    const parts = await page.evaluate(() => window.__vbmd);
    console.log(
      `first meaningful paint of the trend view (40 studies), token response -> chart painted: ${Number(timing).toFixed(0)} ms ` +
        `(ready ${parts?.readyToLoadMs?.toFixed(0)} ms, FHIR reads ${parts?.loadMs?.toFixed(0)} ms, render ${parts?.renderMs?.toFixed(0)} ms)\n  ` +
        stack.fhirTimings.filter((t) => !t.includes('.well-known')).join('\n  '),
    );
    expect(Number(timing)).toBeLessThanOrEqual(1000);

    // Fits a 1280x800 frame: no horizontal scroll, chart fully above the fold.
    const fit = await page.evaluate(() => {
      const r = document.querySelector('[data-testid="trend-chart"]')?.getBoundingClientRect();
      return { scrollW: document.documentElement.scrollWidth, chartBottom: r?.bottom ?? 9999 };
    });
    expect(fit.scrollW).toBeLessThanOrEqual(1280);
    expect(fit.chartBottom).toBeLessThanOrEqual(800);
    expect(await noNestedScroll(page)).toEqual([]);

    await page.screenshot({ path: join(ARTIFACTS, 'trend-ehr-launch.png') });
    expect(await axeSerious(page)).toEqual([]);
    expect(foreign).toEqual([]);
    await page.context().close();
  });

  it('shows the study the launch context (fhirContext ImagingStudy) points at, and per-level series on demand by keyboard', async () => {
    const { page } = await openPage();
    await ehrLaunch(page, 'patient=p-decline&imagingStudy=study-20&banner=0');
    await waitState(page, /^ready$/);
    const details = page.getByTestId('study-details');
    expect(await details.locator('h2').textContent()).toMatch(/^Study from the alert/);
    expect(await details.getByTestId('latest-value').textContent()).toBe(`${(declining[20].summary.vbmd as number).toFixed(1)} mg/cm³`);
    // need_patient_banner false: the EHR shows its own banner.
    expect(await page.getByTestId('context-missing').count()).toBe(0);
    expect(await page.getByTestId('patient-banner').count()).toBe(0);

    expect(await page.locator('svg [data-level="L1"]').count()).toBe(0);
    const l1 = page.getByRole('checkbox', { name: 'L1' });
    await l1.focus();
    await page.keyboard.press('Space');
    // 40 points plus the line.
    await page.waitForFunction(() => document.querySelectorAll('svg path.level-point[data-level="L1"]').length === 40);
    expect(await page.locator('svg polyline[data-level="L1"]').count()).toBe(1);
    // Told apart from the summary line by width, dash, marker and a name at its end (not by colour alone).
    const look = (sel: string) => page.locator(sel).first().evaluate((e) => [getComputedStyle(e).strokeWidth, getComputedStyle(e).strokeDasharray]);
    expect(await look('svg polyline.summary-line')).toEqual(['2.5px', 'none']);
    const [levelWidth, levelDash] = await look('svg polyline.level-line[data-level="L1"]');
    expect(levelWidth).toBe('1.5px');
    expect(levelDash).not.toBe('none');
    expect(await page.locator('svg text.level-label[data-level="L1"]').textContent()).toBe('L1');
    expect(await page.locator('[data-testid="chart-legend"] li[data-legend="level-L1"]').textContent()).toBe('L1 alone (dashed)');
    await page.screenshot({ path: join(ARTIFACTS, 'trend-levels-context.png') });
    expect(await axeSerious(page)).toEqual([]);
    await page.context().close();
  });

  it('EHR launch inside the sandbox EHR frame (1280x800 iframe) completes in the frame', async () => {
    const { page, foreign } = await openPage();
    await page.setViewportSize({ width: 1320, height: 900 });
    await page.goto(`${base}/sandbox/launch?patient=p-stable`);
    const frame = page.frameLocator('iframe[title="vbmd bone density app"]');
    await frame.locator('body[data-state="ready"]').waitFor({ timeout: 15_000 });
    expect(await frame.locator('[data-testid="trend-point"]').count()).toBe(5);
    expect(page.url()).toBe(`${base}/sandbox/launch?patient=p-stable`);
    await page.screenshot({ path: join(ARTIFACTS, 'ehr-frame.png') });
    expect(foreign).toEqual([]);
    await page.context().close();
  });

  it('matches an ImagingStudy in launch context by its DICOM UID when the result names only the UID', async () => {
    const { page } = await openPage();
    await ehrLaunch(page, 'patient=p-uid&imagingStudy=polled-study');
    await waitState(page, /^ready$/);
    const details = page.getByTestId('study-details');
    expect(await details.locator('h2').textContent()).toMatch(/^Study from the alert: CT of 1 Sept? 2025$/);
    expect(await details.getByTestId('latest-value').textContent()).toBe('116.0 mg/cm³');
    expect(await page.getByTestId('context-missing').count()).toBe(0);
    expect(await page.getByTestId('latest-elsewhere').textContent()).toMatch(/^Latest result: 107\.0 mg\/cm³ \(Low bone density \(osteopenia\) range\) on 1 Apr 2026\.$/);
    expect(stack.fhirRequests).toContain('GET /ImagingStudy/polled-study');
    await page.context().close();
  });

  it('a standalone launch without iss outside the sandbox says what to do', async () => {
    const { page } = await openPage();
    await page.goto(`${base}/smart-outside-sandbox/launch.html`);
    await page.waitForFunction(() => document.body.dataset.state === 'error:needs-iss');
    expect(await page.getByTestId('state-error').locator('h2').textContent()).toBe('Which EHR should the app sign in to?');
    expect(await page.getByTestId('error-detail').textContent()).toContain(`${base}/smart-outside-sandbox/launch.html?iss=<the EHR's FHIR base URL>`);
    expect(stack.fhirRequests.filter((r) => r.includes('metadata'))).toEqual([]);
    expect(await axeSerious(page)).toEqual([]);
    await page.context().close();
  });

  it('a CDS card link (appContext {"observation": ...}) opens on that result', async () => {
    const all = await stack.repository.searchResources(parseSearchRequest('Observation?subject=Patient/p-decline&_count=1000'));
    const target = all.find((o) => (o as { effectiveDateTime?: string }).effectiveDateTime === declining[10].input.acquisitionDateTime);
    expect(target?.id).toBeTruthy();
    const { page } = await openPage();
    const appContext = encodeURIComponent(JSON.stringify({ observation: `Observation/${target?.id}` }));
    await ehrLaunch(page, `patient=p-decline&appContext=${appContext}`);
    await waitState(page, /^ready$/);
    const details = page.getByTestId('study-details');
    expect(await details.getAttribute('data-observation')).toBe(target?.id);
    expect(await details.locator('h2').textContent()).toMatch(/^Study from the alert/);
    expect(await details.getByTestId('latest-value').textContent()).toBe(`${(declining[10].summary.vbmd as number).toFixed(1)} mg/cm³`);
    await page.context().close();
  });

  it('says so when the study in context has no result yet, and shows the latest', async () => {
    const { page } = await openPage();
    await ehrLaunch(page, 'patient=p-stable&imagingStudy=not-analysed-yet');
    await waitState(page, /^ready$/);
    expect(await page.getByTestId('context-missing').textContent()).toContain('No result yet for study not-analysed-yet');
    expect(await page.getByTestId('study-details').locator('h2').textContent()).toMatch(/^Latest result/);
    await page.context().close();
  });

  it('standalone launch: patient picker at the authorization server, then the app with a banner', async () => {
    const { page, foreign } = await openPage();
    await page.goto(`${base}/smart/launch.html`);
    await page.waitForURL(/\/auth\/interaction\//);
    await page.screenshot({ path: join(ARTIFACTS, 'standalone-picker.png') });
    expect(await axeSerious(page)).toEqual([]);
    await page.getByLabel('Patient').selectOption('p-stable');
    await page.getByRole('button', { name: 'Allow and open' }).click();
    await waitState(page, /^ready$/);
    expect(await page.locator('[data-testid="trend-point"]').count()).toBe(5);
    expect(await page.getByTestId('latest-value').textContent()).toBe(`${latestOf(stable).toFixed(1)} mg/cm³`);
    expect(await page.getByTestId('latest-category').textContent()).toBe('Normal range');
    expect(await page.getByTestId('no-alerts').count()).toBe(1);
    expect(await page.getByTestId('patient-banner').textContent()).toContain('Demo Patient p-stable');
    await page.screenshot({ path: join(ARTIFACTS, 'trend-standalone.png') });
    expect(foreign).toEqual([]);
    await page.context().close();
  });

  it('thoracic extrapolation, excluded level with reason, uncalibrated result', async () => {
    const { page } = await openPage();
    await ehrLaunch(page, 'patient=p-thoracic');
    await waitState(page, /^ready$/);
    expect(await page.getByTestId('extrapolation-caveat').count()).toBe(1);
    expect(await page.getByTestId('latest-value').textContent()).toBe('90.0 mg/cm³');
    expect(await page.getByTestId('latest-category').textContent()).toBe('Low bone density (osteopenia) range');
    expect(await page.getByTestId('alert-osteopenia').textContent()).toMatch(/^Low bone density \(osteopenia\) range: vBMD 90\.0 mg\/cm³ on CT of 4 May 2026\./);
    // One vocabulary: never "osteopenia" without "low bone density" before it.
    expect((await page.locator('body').innerText()).replace(/low bone density \(osteopenia\)/gi, '')).not.toMatch(/osteopenia/i);
    const rows = await page.getByTestId('levels-table').locator('tbody tr').allTextContents();
    expect(rows.find((r) => r.startsWith('T10'))).toMatch(/Excluded: lesion/);
    expect(await page.getByTestId('uncalibrated-caveat').textContent()).toMatch(/^Uncalibrated: no scanner calibration/);
    expect(await page.getByTestId('contrast-caveat').textContent()).toBe('Contrast-enhanced CT: vBMD reads higher than without contrast, so osteoporosis may be under-called.');
    // On the chart by shape and label, with a legend: a hollow (uncalibrated) triangle (contrast) tagged T.
    const point = page.locator('[data-testid="trend-point"]');
    expect(await point.count()).toBe(1);
    expect(await point.evaluate((e) => [e.tagName, e.getAttribute('class'), e.dataset.contrast, e.dataset.thoracic, e.dataset.uncalibrated])).toEqual([
      'path',
      'point point-osteopenia point-highlight point-uncalibrated',
      'true',
      'true',
      'true',
    ]);
    expect(await page.getByTestId('thoracic-tag').textContent()).toBe('T');
    expect(await page.getByTestId('chart-legend').locator('li > span').allTextContents()).toEqual([
      'Summary vBMD, one point per CT study',
      'Triangle: contrast-enhanced CT (reads higher)',
      'T: thoracic extrapolation',
      'Hollow: uncalibrated (typical error 12–16 mg/cm³)',
    ]);
    await page.screenshot({ path: join(ARTIFACTS, 'details-thoracic.png') });
    expect(await axeSerious(page)).toEqual([]);
    await page.context().close();
  });

  it('no data: a patient without results', async () => {
    const { page } = await openPage();
    await ehrLaunch(page, 'patient=p-empty');
    await waitState(page, /^no-data$/);
    expect(await page.getByTestId('state-no-data').textContent()).toContain('No bone-density results yet');
    await page.screenshot({ path: join(ARTIFACTS, 'state-no-data.png') });
    expect(await axeSerious(page)).toEqual([]);
    await page.context().close();
  });

  it('launch without context: the app page opened directly, and an unknown launch value', async () => {
    const { page } = await openPage();
    await page.goto(`${base}/smart/index.html`);
    await waitState(page, /^error:no-context$/);
    expect(await page.getByTestId('state-error').locator('h2').textContent()).toBe('Open this app from a patient chart');
    await page.screenshot({ path: join(ARTIFACTS, 'state-no-context.png') });
    expect(await axeSerious(page)).toEqual([]);

    await page.goto(`${base}/smart/launch.html?iss=${encodeURIComponent(`${base}/fhir`)}&launch=stale-value`);
    await waitState(page, /^error:launch-failed$/);
    expect(await page.getByTestId('state-error').textContent()).toMatch(/launch value is unknown or has expired/);
    await page.screenshot({ path: join(ARTIFACTS, 'state-launch-failed.png') });
    await page.context().close();
  });

  it.each([
    [401, 'unauthorized', 'The FHIR server did not accept'],
    [403, 'forbidden', 'You do not have access'],
    [500, 'server', 'The FHIR server had a problem'],
  ])('FHIR %i renders an actionable error', async (status, kind, title) => {
    const { page } = await openPage();
    stack.fault.status = status;
    try {
      await ehrLaunch(page, 'patient=p-stable');
      await waitState(page, new RegExp(`^error:${kind}$`));
      expect(await page.getByTestId('state-error').locator('h2').textContent()).toContain(title);
      await page.screenshot({ path: join(ARTIFACTS, `state-fhir-${status}.png`) });
      expect(await axeSerious(page)).toEqual([]);
      if (status === 500) {
        stack.fault.status = null;
        await page.getByRole('button', { name: 'Try again' }).click();
        await waitState(page, /^ready$/);
        expect(await page.locator('[data-testid="trend-point"]').count()).toBe(5);
      }
    } finally {
      stack.fault.status = null;
      await page.context().close();
    }
  });

  it('degrades when only the RiskAssessment is refused (403): trend shown, risk marked not available', async () => {
    const { page } = await openPage();
    stack.fault.status = 403;
    stack.fault.path = /^\/RiskAssessment/;
    try {
      await ehrLaunch(page, 'patient=p-stable');
      await waitState(page, /^ready$/);
      expect(await page.locator('[data-testid="trend-point"]').count()).toBe(5);
      expect(await page.getByTestId('risk').textContent()).toMatch(/^Not available/);
    } finally {
      stack.fault.status = null;
      stack.fault.path = null;
      await page.context().close();
    }
  });

  it('keyboard only: Tab reaches Reload, the level boxes and the values table, which opens with Enter', async () => {
    const { page } = await openPage();
    await ehrLaunch(page, 'patient=p-decline');
    await waitState(page, /^ready$/);
    const focused = async () => page.evaluate(() => {
      const a = document.activeElement as HTMLElement | null;
      return a ? `${a.tagName.toLowerCase()}${a.id ? `#${a.id}` : ''}${(a as HTMLInputElement).value ? `=${(a as HTMLInputElement).value}` : ''}` : '';
    });
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      seen.push(await focused());
      if (seen[seen.length - 1] === 'summary') break;
    }
    expect(seen[0]).toBe('button#reload');
    expect(seen).toEqual(expect.arrayContaining(['input=T12', 'input=L1', 'input=L2', 'summary']));
    await page.keyboard.press('Enter');
    expect(await page.getByTestId('values-table').locator('tbody tr').count()).toBe(40);
    expect(await page.getByRole('img', { name: /Summary vBMD over time/ }).count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'values-table.png') });
    await page.context().close();
  });

  it('every FHIR search the app made named its patient (compartment) and none went elsewhere', () => {
    const searches = stack.fhirRequests.filter((r) => /^GET \/(Observation|RiskAssessment)\?/.test(r));
    expect(searches.length).toBeGreaterThan(0);
    for (const s of searches) expect(decodeURIComponent(s)).toMatch(/[?&](patient|subject)=Patient\/p-/);
  });
});
