import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

/** Debian's chromium (installed by .ci/run); playwright-core never downloads a browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Starts real headless Chromium for browser tests. Background networking, component updates, sync and QUIC
 * are off so the browser makes no requests of its own (the tests check every request stays on the test
 * server's origin). Close it in afterAll with `browser.close()`.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Browser tests need Chromium at ${CHROMIUM_PATH}: run  sudo apt-get install -y chromium`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}
