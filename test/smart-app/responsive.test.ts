import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { caveatSeries } from './fixtures.js';
import { axeSerious, noNestedScroll, openPage, seedPatient, startSmartStack, waitState } from './harness.js';
import type { SmartStack } from './harness.js';
import { savePaletteScreenshot } from './screenshot.js';

/**
 * The view from a 360 px phone through a 760 px EHR side panel to wide screens, in real Chromium: no
 * horizontal scroll, no element scrolling on its own, the result (value, category), its alerts and its caveats
 * inside the first screen, the result before the chart in one column, axe clean. Screenshots of each width
 * are committed under test/smart-app/screenshots/ for review (palette PNGs of a few tens of kB).
 */
const SHOTS = join(process.cwd(), 'test', 'smart-app', 'screenshots');
const END = Date.UTC(2026, 8, 1);

/** Widths of the acceptance and a typical screen height at each (phone, side panel, laptop, desktop). */
const VIEWPORTS = [
  { width: 360, height: 780 },
  { width: 760, height: 800 },
  { width: 1024, height: 768 },
  { width: 1440, height: 900 },
];
/** Must be on the first screen, whole. */
const FIRST_SCREEN = ['latest-value', 'latest-category', 'alert-osteoporosis', 'alert-decline', 'extrapolation-caveat', 'contrast-caveat'];

let stack: SmartStack;
let browser: Browser;

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  stack = await startSmartStack({ patients: [{ id: 'p-caveats', label: 'Demo Patient p-caveats' }] });
  await seedPatient(stack.repository, 'p-caveats', caveatSeries('9100', END));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

async function launch(viewport: { width: number; height: number }): Promise<Page> {
  const { page } = await openPage(browser, [stack.base], viewport);
  await page.goto(`${stack.base}/sandbox/launch?patient=p-caveats&open=redirect`);
  await waitState(page, /^ready$/);
  return page;
}

async function box(page: Page, testId: string): Promise<{ x: number; y: number; right: number; bottom: number }> {
  const b = await page.getByTestId(testId).boundingBox();
  if (!b) throw new Error(`${testId} is not rendered`);
  return { x: b.x, y: b.y, right: b.x + b.width, bottom: b.y + b.height };
}

describe('SMART app layout at 360, 760, 1024 and 1440 px', () => {
  it.each(VIEWPORTS)('$width px wide: no sideways or nested scroll, the result, alerts and caveats on the first screen, axe clean', async (vp) => {
    const page = await launch(vp);
    const scroll = await page.evaluate(() => ({ scrollW: document.documentElement.scrollWidth, clientW: document.documentElement.clientWidth }));
    expect(scroll.scrollW).toBeLessThanOrEqual(scroll.clientW);
    expect(scroll.clientW).toBe(vp.width);
    expect(await noNestedScroll(page)).toEqual([]);
    for (const id of FIRST_SCREEN) {
      const b = await box(page, id);
      expect({ id, inside: b.x >= 0 && b.right <= vp.width && b.y >= 0 && b.bottom <= vp.height }).toEqual({ id, inside: true });
    }
    // The chart is drawn to its box, whatever the width.
    const chart = await box(page, 'trend-chart');
    const container = await box(page, 'chart-container');
    expect(chart.right).toBeLessThanOrEqual(container.right + 0.5);
    // One column up to the side panel: the result above the chart; from 1024 px the chart beside it.
    const summary = await box(page, 'study-details');
    if (vp.width < 1000) expect(summary.bottom).toBeLessThanOrEqual(chart.y);
    else expect(summary.x).toBeGreaterThan(chart.right);
    expect(await page.getByTestId('trend-point').count()).toBe(8);
    // The rate's window holds 3 contrast-enhanced and 3 other CTs: said beside the rate (the card's words).
    expect(await page.getByTestId('contrast-mix').textContent()).toBe('The rate mixes 3 contrast-enhanced and 3 other CTs: contrast reads higher, so part of the change may be the contrast, not the bone.');
    expect(await page.locator('[data-testid="trend-point"][data-contrast="true"]').count()).toBe(3);
    expect(await axeSerious(page)).toEqual([]);
    const file = join(SHOTS, `app-${vp.width}px.png`);
    await savePaletteScreenshot(page, file);
    const bytes = (await stat(file)).size;
    console.log(`screenshot ${vp.width}x${vp.height}: ${(bytes / 1024).toFixed(0)} kB`);
    expect(bytes).toBeLessThan(120 * 1024);
    await page.context().close();
  });

  it('redraws the chart to a narrower panel without sideways scroll (an EHR panel resized from 760 to 360 px)', async () => {
    const page = await launch({ width: 760, height: 800 });
    const before = Number(await page.getByTestId('trend-chart').getAttribute('width'));
    await page.setViewportSize({ width: 360, height: 780 });
    await page.waitForFunction((w) => Number(document.querySelector('[data-testid="trend-chart"]')?.getAttribute('width')) < w, before);
    const after = await page.evaluate(() => ({ scrollW: document.documentElement.scrollWidth, chartW: Number(document.querySelector('[data-testid="trend-chart"]')?.getAttribute('width')) }));
    expect(after.scrollW).toBeLessThanOrEqual(360);
    expect(after.chartW).toBeLessThan(360);
    await page.context().close();
  });
});
