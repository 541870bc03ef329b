import type { CohortRow } from '../aggregate.js';
import type { CohortSummary } from '../query.js';
import { describeQuery } from './group.js';

/** Bin width and range of the histogram, mg/cm3: 10 mg/cm3 bins from 0 to 250 cover adult trabecular vBMD
 * (ACR thresholds 80 and 120 fall on bin edges); values outside go to the end bins, labelled as such. */
export const HISTOGRAM_BIN_MG_CM3 = 10;
export const HISTOGRAM_MAX_MG_CM3 = 250;

export interface Histogram {
  edges: number[];
  counts: number[];
}

/** Streaming-friendly: O(bins) memory. */
export function histogramOf(values: Iterable<number>): Histogram {
  const bins = HISTOGRAM_MAX_MG_CM3 / HISTOGRAM_BIN_MG_CM3;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) {
    const i = Math.min(bins - 1, Math.max(0, Math.floor(v / HISTOGRAM_BIN_MG_CM3)));
    counts[i]++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => i * HISTOGRAM_BIN_MG_CM3), counts };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = { osteoporosis: '#b2182b', osteopenia: '#ef8a62', normal: '#4d9221' };

/** A self-contained SVG: bars coloured by ACR band, dashed lines at 80 and 120 mg/cm3, the counts by category
 * and the query as a caption. No fonts or scripts to load (it opens in any browser or EHR viewer). */
export function cohortHistogramSvg(rows: Iterable<Pick<CohortRow, 'latestVbmdMgCm3'>>, summary: CohortSummary): string {
  const values: number[] = [];
  for (const r of rows) if (r.latestVbmdMgCm3 !== null) values.push(r.latestVbmdMgCm3);
  const h = histogramOf(values);
  const W = 760;
  const H = 420;
  const left = 60;
  const right = 20;
  const top = 50;
  const bottom = 90;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const maxCount = Math.max(1, ...h.counts);
  const x = (mg: number) => left + (mg / HISTOGRAM_MAX_MG_CM3) * plotW;
  const y = (n: number) => top + plotH - (n / maxCount) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<title>Latest vBMD per patient (n=${values.length})</title>`);
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">Latest vBMD per patient, mg/cm3 (n=${values.length})</text>`);
  parts.push(`<text x="${left}" y="40" fill="#444">${esc(describeQuery(summary.query))}</text>`);
  // Each bar is stacked by the values' own ACR category: 120 mg/cm3 is osteopenia although it opens the
  // [120, 130) bin, so colouring whole bins by their edges would mislabel it.
  const byCat = h.counts.map(() => ({ osteoporosis: 0, osteopenia: 0, normal: 0 }));
  for (const v of values) {
    const i = Math.min(h.counts.length - 1, Math.max(0, Math.floor(v / HISTOGRAM_BIN_MG_CM3)));
    byCat[i][v > 120 ? 'normal' : v >= 80 ? 'osteopenia' : 'osteoporosis']++;
  }
  h.counts.forEach((n, i) => {
    if (n === 0) return;
    const lo = h.edges[i];
    const bx = x(lo) + 1;
    const bw = x(h.edges[i + 1]) - x(lo) - 2;
    let below = 0;
    for (const cat of ['osteoporosis', 'osteopenia', 'normal'] as const) {
      const k = byCat[i][cat];
      if (k === 0) continue;
      const yTop = y(below + k);
      parts.push(`<rect x="${bx.toFixed(1)}" y="${yTop.toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(below) - yTop).toFixed(1)}" fill="${COLORS[cat]}"><title>${lo}-${lo + HISTOGRAM_BIN_MG_CM3} mg/cm3: ${k} ${cat}</title></rect>`);
      below += k;
    }
  });
  // Axes and ticks.
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#000"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#000"/>`);
  for (let mg = 0; mg <= HISTOGRAM_MAX_MG_CM3; mg += 50) {
    parts.push(`<text x="${x(mg)}" y="${top + plotH + 16}" text-anchor="middle">${mg === HISTOGRAM_MAX_MG_CM3 ? `${mg}+` : mg}</text>`);
  }
  for (const frac of [0, 0.5, 1]) {
    const n = Math.round(maxCount * frac);
    parts.push(`<text x="${left - 6}" y="${y(n) + 4}" text-anchor="end">${n}</text>`);
  }
  for (const t of [80, 120]) {
    parts.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${top + plotH}" stroke="#333" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${x(t) + 3}" y="${top + 12}" fill="#333">${t}</text>`);
  }
  const c = summary.matchedByCategory;
  parts.push(`<text x="${left}" y="${H - 50}">ACR QCT: &lt;80 osteoporosis (${c.osteoporosis}), 80-120 osteopenia (${c.osteopenia}), &gt;120 normal (${c.normal}); indeterminate ${c.indeterminate}</text>`);
  parts.push(`<text x="${left}" y="${H - 32}" fill="#444">Values below 0 or at/above ${HISTOGRAM_MAX_MG_CM3} are counted in the end bins. Source: ${esc(summary.source)}; as of ${summary.asOf.slice(0, 10)}.</text>`);
  parts.push(`<text x="${left}" y="${H - 14}" fill="#444">Opportunistic CT vBMD; not a DXA T-score.</text>`);
  parts.push('</svg>\n');
  return parts.join('\n');
}
