import { writeFile } from 'node:fs/promises';
import { decode, encode } from 'fast-png';
import { applyPaletteSync, buildPaletteSync, utils } from 'image-q';
import type { Page } from 'playwright-core';

/**
 * The first screen of the page as a small PNG for review (committed): 1 CSS px per pixel, reduced to a
 * 48-colour palette (image-q's Wu quantizer, nearest colour without dithering: flat UI colours and text stay
 * crisp) and written as an indexed PNG (fast-png). About a third of the truecolour file.
 */
export async function savePaletteScreenshot(page: Page, file: string, colors = 48): Promise<void> {
  const img = decode(await page.screenshot({ scale: 'css', type: 'png' }));
  const n = img.width * img.height;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = Number(img.data[i * img.channels + c]);
    rgba[i * 4 + 3] = 255;
  }
  const points = utils.PointContainer.fromUint8Array(rgba, img.width, img.height);
  const palette = buildPaletteSync([points], { colors, paletteQuantization: 'wuquant' });
  const mapped = applyPaletteSync(points, palette, { imageQuantization: 'nearest' }).toUint8Array();
  const entries = palette.getPointContainer().getPointArray();
  const indexOf = new Map(entries.map((p, i) => [(p.r << 16) | (p.g << 8) | p.b, i]));
  const indexed = new Uint8Array(n);
  for (let i = 0; i < n; i++) indexed[i] = indexOf.get((mapped[i * 4]! << 16) | (mapped[i * 4 + 1]! << 8) | mapped[i * 4 + 2]!) ?? 0;
  await writeFile(file, encode({ width: img.width, height: img.height, data: indexed, depth: 8, channels: 1, palette: entries.map((p) => [p.r, p.g, p.b]) }));
}
