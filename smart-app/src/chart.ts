import { categoryForVbmd } from '../../src/bmd/report.js';
import { CATEGORY_LABEL, date, esc, UNIT_MG_CM3 } from './format.js';
import type { Trend, TrendPoint } from './trend.js';
import { MS_PER_YEAR } from './trend.js';

/**
 * The trend chart as hand-written SVG markup (a string, built in one pass). Why not a chart library: the
 * chart is one time axis, three shaded bands and a few polylines; SVG gives a real accessible name and
 * description, text that screen readers and zoom handle, no canvas, and ~5 kB instead of ~200 kB, which
 * keeps first paint well inside the 1 s budget. The values are also offered as a table (views.ts).
 */

export interface ChartOptions {
  width: number;
  height: number;
  /** Levels whose own series are drawn (per-level series on demand). */
  showLevels: ReadonlySet<string>;
  /** Observation id to emphasise (the study in launch context, else the latest). */
  highlight?: string;
}

/** ACR QCT thresholds (mg/cm3): < 80 osteoporosis, 80-120 osteopenia, > 120 normal. */
export const BANDS = [
  { id: 'osteoporosis', from: 0, to: 80, label: 'Osteoporosis < 80' },
  { id: 'osteopenia', from: 80, to: 120, label: 'Osteopenia 80–120' },
  { id: 'normal', from: 120, to: Number.POSITIVE_INFINITY, label: 'Normal > 120' },
] as const;

const LEVEL_COLORS = ['#6a3d9a', '#1f78b4', '#b15928', '#33a02c', '#e31a1c', '#ff7f00', '#017c7c', '#8c564b'];
const LEVEL_DASH = ['6 3', '2 3', '8 3 2 3', '4 2', '1 2', '10 4'];

export function levelColor(i: number): string {
  return LEVEL_COLORS[i % LEVEL_COLORS.length];
}

function niceMax(maxV: number): number {
  return Math.max(200, Math.ceil((maxV + 15) / 50) * 50);
}

interface Tick {
  tMs: number;
  label: string;
}

/** Year ticks for long spans, quarter ticks for short ones; never more than ~12 labels. */
export function timeTicks(minMs: number, maxMs: number): Tick[] {
  const spanYears = (maxMs - minMs) / MS_PER_YEAR;
  const ticks: Tick[] = [];
  const start = new Date(minMs);
  if (spanYears > 2) {
    const step = Math.max(1, Math.ceil(spanYears / 11));
    for (let y = start.getUTCFullYear(); ; y += step) {
      const t = Date.UTC(y, 0, 1);
      if (t > maxMs) break;
      if (t >= minMs) ticks.push({ tMs: t, label: String(y) });
    }
  } else {
    const stepMonths = spanYears > 1 ? 3 : spanYears > 0.4 ? 2 : 1;
    let y = start.getUTCFullYear();
    let m = start.getUTCMonth();
    for (let i = 0; i < 40; i++) {
      const t = Date.UTC(y, m, 1);
      if (t > maxMs) break;
      if (t >= minMs && m % stepMonths === 0) {
        ticks.push({ tMs: t, label: new Date(t).toLocaleString('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' }) });
      }
      m++;
      if (m === 12) {
        m = 0;
        y++;
      }
    }
  }
  return ticks;
}

export function renderTrendChart(trend: Trend, opts: ChartOptions): string {
  const { width, height } = opts;
  const m = { left: 60, right: 150, top: 14, bottom: 44 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const shownLevels = trend.levels.filter((l) => opts.showLevels.has(l.level));
  const all: TrendPoint[] = [...trend.summary, ...shownLevels.flatMap((l) => l.points)];
  const values = all.map((p) => p.vbmdMgCm3);
  const yMax = niceMax(values.length ? Math.max(...values) : 0);
  const times = all.map((p) => p.tMs);
  let tMin = times.length ? Math.min(...times) : Date.now() - MS_PER_YEAR;
  let tMax = times.length ? Math.max(...times) : Date.now();
  const pad = Math.max((tMax - tMin) * 0.04, 45 * 24 * 3600 * 1000);
  tMin -= pad;
  tMax += pad;
  const x = (t: number): number => m.left + ((t - tMin) / (tMax - tMin)) * plotW;
  const y = (v: number): number => m.top + plotH - (Math.max(0, Math.min(v, yMax)) / yMax) * plotH;
  const f = (n: number): string => n.toFixed(1);

  const parts: string[] = [];
  const latest = trend.summary[trend.summary.length - 1];
  const desc = trend.summary.length
    ? `${trend.summary.length} studies from ${date(trend.summary[0].tMs)} to ${date(latest.tMs)}. Latest ${latest.vbmdMgCm3.toFixed(1)} ${UNIT_MG_CM3} (${CATEGORY_LABEL[categoryForVbmd(latest.vbmdMgCm3)]}). Shaded bands: osteoporosis below 80, osteopenia 80 to 120, normal above 120 ${UNIT_MG_CM3}.`
    : 'No results to plot.';
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="chart-title chart-desc" data-testid="trend-chart">`,
    `<title id="chart-title">Summary vBMD over time (${UNIT_MG_CM3})</title><desc id="chart-desc">${esc(desc)}</desc>`,
  );

  // ACR bands, shaded and labelled in the right margin.
  for (const b of BANDS) {
    const top = y(Math.min(b.to, yMax));
    const bottom = y(b.from);
    parts.push(
      `<rect class="band band-${b.id}" data-band="${b.id}" x="${m.left}" y="${f(top)}" width="${plotW}" height="${f(bottom - top)}"/>`,
      `<text class="band-label band-label-${b.id}" x="${m.left + plotW + 8}" y="${f((top + bottom) / 2 + 4)}">${esc(b.label)}</text>`,
    );
  }

  // Y axis and gridlines every 20 (or 50 when tall).
  const step = yMax > 300 ? 50 : 20;
  for (let v = 0; v <= yMax; v += step) {
    parts.push(
      `<line class="grid" x1="${m.left}" x2="${m.left + plotW}" y1="${f(y(v))}" y2="${f(y(v))}"/>`,
      `<text class="tick" x="${m.left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v}</text>`,
    );
  }
  parts.push(
    `<text class="axis-title" transform="translate(14 ${f(m.top + plotH / 2)}) rotate(-90)" text-anchor="middle">vBMD (${UNIT_MG_CM3})</text>`,
    `<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + plotH}"/>`,
    `<line class="axis" x1="${m.left}" x2="${m.left + plotW}" y1="${m.top + plotH}" y2="${m.top + plotH}"/>`,
  );
  for (const t of timeTicks(tMin, tMax)) {
    parts.push(
      `<line class="axis" x1="${f(x(t.tMs))}" x2="${f(x(t.tMs))}" y1="${m.top + plotH}" y2="${m.top + plotH + 5}"/>`,
      `<text class="tick" x="${f(x(t.tMs))}" y="${m.top + plotH + 18}" text-anchor="middle">${esc(t.label)}</text>`,
    );
  }
  parts.push(`<text class="axis-title" x="${f(m.left + plotW / 2)}" y="${height - 6}" text-anchor="middle">CT study date</text>`);

  // Summary series: one point per study.
  if (trend.summary.length > 1) {
    parts.push(
      `<polyline class="summary-line" fill="none" points="${trend.summary.map((p) => `${f(x(p.tMs))},${f(y(p.vbmdMgCm3))}`).join(' ')}"/>`,
    );
  }
  for (const p of trend.summary) {
    const cat = categoryForVbmd(p.vbmdMgCm3);
    const hi = p.observationId === opts.highlight;
    parts.push(
      `<circle class="point point-${cat}${hi ? ' point-highlight' : ''}${p.uncalibrated ? ' point-uncalibrated' : ''}" data-testid="trend-point" data-observation="${esc(p.observationId)}" data-value="${p.vbmdMgCm3}" cx="${f(x(p.tMs))}" cy="${f(y(p.vbmdMgCm3))}" r="${hi ? 7 : 5}"><title>${esc(`${date(p.tMs)}: ${p.vbmdMgCm3.toFixed(1)} ${UNIT_MG_CM3}, ${CATEGORY_LABEL[cat]}${p.uncalibrated ? ' (uncalibrated)' : ''}`)}</title></circle>`,
    );
  }
  // Per-level series (dashed), drawn over the summary so they stay visible where they coincide.
  shownLevels.forEach((l) => {
    const i = trend.levels.indexOf(l);
    const color = levelColor(i);
    const dash = LEVEL_DASH[i % LEVEL_DASH.length];
    if (l.points.length > 1) {
      parts.push(
        `<polyline class="level-line" data-level="${esc(l.level)}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="${dash}" points="${l.points.map((p) => `${f(x(p.tMs))},${f(y(p.vbmdMgCm3))}`).join(' ')}"/>`,
      );
    }
    for (const p of l.points) {
      parts.push(
        `<rect class="level-point" data-level="${esc(l.level)}" x="${f(x(p.tMs) - 3)}" y="${f(y(p.vbmdMgCm3) - 3)}" width="6" height="6" fill="${color}"><title>${esc(`${l.level} ${date(p.tMs)}: ${p.vbmdMgCm3.toFixed(1)} ${UNIT_MG_CM3}`)}</title></rect>`,
      );
    }
  });

  parts.push('</svg>');
  return parts.join('');
}
