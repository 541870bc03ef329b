import { categoryForVbmd } from '../../src/bmd/report.js';
import { CATEGORY_TERM } from '../../src/fhir/result-words.js';
import { CATEGORY_LABEL, date, esc, UNIT_MG_CM3 } from './format.js';
import type { RateOfChange, Trend, TrendPoint } from './trend.js';
import { MS_PER_YEAR } from './trend.js';

/**
 * The trend chart as hand-written SVG markup (a string, built in one pass), sized to its container (360 px
 * phone to wide screen). Why not a chart library: one time axis, three shaded bands, a shaded rate window
 * with its fitted line and a few polylines; SVG gives a real accessible name and description, text that
 * screen readers and zoom handle, no canvas, and ~6 kB instead of ~200 kB. The values are also offered as a
 * table (views.ts) and the legend is HTML beside it (legend.ts), so it wraps on a narrow screen.
 *
 * Every mark that means something has a shape or a label, not colour alone (WCAG 1.4.1): contrast-enhanced
 * studies are triangles, uncalibrated ones hollow with a dashed outline, thoracic extrapolations carry a "T";
 * per-level series are thin dashed lines with small diamonds and their level's name at the end, the summary a
 * thick solid line with large markers; the rate of change's studies lie in a shaded window with the fitted
 * line drawn over them.
 */

export interface ChartOptions {
  width: number;
  height: number;
  /** Levels whose own series are drawn (per-level series on demand). */
  showLevels: ReadonlySet<string>;
  /** Observation id to emphasise (the study in launch context, else the latest). */
  highlight?: string;
  /** The rate of change: its window is shaded and its least-squares line drawn. */
  rate?: RateOfChange | null;
}

/** ACR QCT thresholds (mg/cm3): < 80 osteoporosis, 80-120 low bone density (osteopenia), > 120 normal. */
export const BANDS = [
  { id: 'osteoporosis', from: 0, to: 80, label: `${CATEGORY_LABEL.osteoporosis} < 80` },
  { id: 'osteopenia', from: 80, to: 120, label: `${CATEGORY_LABEL.osteopenia} 80–120` },
  { id: 'normal', from: 120, to: Number.POSITIVE_INFINITY, label: `${CATEGORY_LABEL.normal} > 120` },
] as const;

const LEVEL_COLORS = ['#6a3d9a', '#1f78b4', '#b15928', '#33a02c', '#c51b1d', '#b35900', '#017c7c', '#8c564b'];
const LEVEL_DASH = ['6 3', '2 3', '8 3 2 3', '4 2', '1 2', '10 4'];

export function levelColor(i: number): string {
  return LEVEL_COLORS[i % LEVEL_COLORS.length]!;
}

export function levelDash(i: number): string {
  return LEVEL_DASH[i % LEVEL_DASH.length]!;
}

function niceMax(maxV: number): number {
  return Math.max(200, Math.ceil((maxV + 15) / 50) * 50);
}

interface Tick {
  tMs: number;
  label: string;
}

/** Year ticks for long spans, month ticks for short ones; at most `maxTicks` labels (they must not
 * overlap on a 360 px phone). */
export function timeTicks(minMs: number, maxMs: number, maxTicks = 11): Tick[] {
  const spanYears = (maxMs - minMs) / MS_PER_YEAR;
  const ticks: Tick[] = [];
  const start = new Date(minMs);
  if (spanYears > 2) {
    const step = Math.max(1, Math.ceil(spanYears / Math.max(1, maxTicks)));
    for (let y = start.getUTCFullYear(); ; y += 1) {
      const t = Date.UTC(y, 0, 1);
      if (t > maxMs) break;
      if (t >= minMs && y % step === 0) ticks.push({ tMs: t, label: String(y) });
    }
    return ticks;
  }
  let y = start.getUTCFullYear();
  let m = start.getUTCMonth();
  for (let i = 0; i < 40; i++) {
    const t = Date.UTC(y, m, 1);
    if (t > maxMs) break;
    if (t >= minMs) ticks.push({ tMs: t, label: new Date(t).toLocaleString('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' }) });
    m++;
    if (m === 12) {
      m = 0;
      y++;
    }
  }
  const step = Math.max(1, Math.ceil(ticks.length / Math.max(1, maxTicks)));
  return ticks.filter((_t, i) => i % step === 0);
}

/** Marker of one summary study: its shape says contrast (triangle) or not (circle). */
function studyMarker(p: TrendPoint, cx: number, cy: number, r: number, cls: string, title: string, f: (n: number) => string): string {
  const data = `data-testid="trend-point" data-observation="${esc(p.observationId)}" data-value="${p.vbmdMgCm3}"${p.contrast ? ' data-contrast="true"' : ''}${p.thoracic ? ' data-thoracic="true"' : ''}${p.uncalibrated ? ' data-uncalibrated="true"' : ''}`;
  const t = `<title>${esc(title)}</title>`;
  if (p.contrast) {
    const h = r * 1.35;
    return `<path class="${cls}" ${data} d="M${f(cx)} ${f(cy - h)}L${f(cx + h)} ${f(cy + h * 0.8)}L${f(cx - h)} ${f(cy + h * 0.8)}Z">${t}</path>`;
  }
  return `<circle class="${cls}" ${data} cx="${f(cx)}" cy="${f(cy)}" r="${r}">${t}</circle>`;
}

function pointTitle(p: TrendPoint): string {
  const cat = categoryForVbmd(p.vbmdMgCm3);
  const flags = [p.contrast ? 'contrast-enhanced' : '', p.thoracic ? 'thoracic extrapolation' : '', p.uncalibrated ? 'uncalibrated' : ''].filter(Boolean);
  return `${date(p.tMs)}: ${p.vbmdMgCm3.toFixed(1)} ${UNIT_MG_CM3}, ${CATEGORY_TERM[cat]}${flags.length ? ` (${flags.join(', ')})` : ''}`;
}

/** The plot's geometry: margins, plot size, value and time ranges and the scales from data to pixels. */
interface Frame {
  narrow: boolean;
  m: { left: number; right: number; top: number; bottom: number };
  plotW: number;
  plotH: number;
  yMax: number;
  tMin: number;
  tMax: number;
  x: (t: number) => number;
  y: (v: number) => number;
}

const f = (n: number): string => n.toFixed(1);

function chartFrame(trend: Trend, opts: ChartOptions, shownLevels: Trend['levels']): Frame {
  const { width, height } = opts;
  const narrow = width < 480;
  const m = { left: narrow ? 38 : 50, right: narrow ? 30 : 40, top: 10, bottom: 36 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const all: TrendPoint[] = [...trend.summary, ...shownLevels.flatMap((l) => l.points)];
  const yMax = niceMax(all.length ? Math.max(...all.map((p) => p.vbmdMgCm3)) : 0);
  const times = all.map((p) => p.tMs);
  let tMin = times.length ? Math.min(...times) : Date.now() - MS_PER_YEAR;
  let tMax = times.length ? Math.max(...times) : Date.now();
  const pad = Math.max((tMax - tMin) * 0.04, 45 * 24 * 3600 * 1000);
  tMin -= pad;
  tMax += pad;
  const x = (t: number): number => m.left + ((t - tMin) / (tMax - tMin)) * plotW;
  const y = (v: number): number => m.top + plotH - (Math.max(0, Math.min(v, yMax)) / yMax) * plotH;
  return { narrow, m, plotW, plotH, yMax, tMin, tMax, x, y };
}

/** The svg element's opening tag with its accessible name and description. */
function chartHead(trend: Trend, opts: ChartOptions, rate: RateOfChange | null): string[] {
  const { width, height } = opts;
  const latest = trend.summary[trend.summary.length - 1];
  const desc = latest
    ? `${trend.summary.length} studies from ${date(trend.summary[0]!.tMs)} to ${date(latest.tMs)}. Latest ${latest.vbmdMgCm3.toFixed(1)} ${UNIT_MG_CM3} (${CATEGORY_TERM[categoryForVbmd(latest.vbmdMgCm3)]}). Shaded bands: osteoporosis below 80, low bone density (osteopenia) 80 to 120, normal above 120 ${UNIT_MG_CM3}.${
        rate ? ` The rate of change is fitted to the ${rate.studies} studies from ${date(rate.fromMs)} to ${date(rate.toMs)} (shaded window, dashed line).` : ''
      }`
    : 'No results to plot.';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="chart-title chart-desc" data-testid="trend-chart">`,
    `<title id="chart-title">Summary vBMD over time (${UNIT_MG_CM3})</title><desc id="chart-desc">${esc(desc)}</desc>`,
  ];
}

/** ACR bands, shaded, each labelled inside its top-left corner; then the rate's window (its studies are the
 * ones inside the shaded span). */
function bandsAndWindow(fr: Frame, rate: RateOfChange | null, parts: string[]): void {
  const { m, plotW, plotH, yMax, x, y } = fr;
  for (const b of BANDS) {
    const top = y(Math.min(b.to, yMax));
    const bottom = y(b.from);
    parts.push(`<rect class="band band-${b.id}" data-band="${b.id}" x="${m.left}" y="${f(top)}" width="${f(plotW)}" height="${f(bottom - top)}"/>`);
    if (bottom - top >= 16) parts.push(`<text class="band-label band-label-${b.id}" x="${m.left + 6}" y="${f(top + 13)}">${esc(b.label)}</text>`);
  }
  if (rate) {
    const x0 = x(rate.fromMs) - 4;
    const x1 = x(rate.toMs) + 4;
    parts.push(`<rect class="rate-window" data-testid="rate-window" x="${f(x0)}" y="${m.top}" width="${f(x1 - x0)}" height="${f(plotH)}"/>`);
  }
}

/** Value grid and ticks, the axes and the time ticks. */
function axes(fr: Frame, parts: string[]): void {
  const { narrow, m, plotW, plotH, yMax, tMin, tMax, x, y } = fr;
  const step = yMax > 300 ? 50 : 20;
  for (let v = 0; v <= yMax; v += step) {
    parts.push(
      `<line class="grid" x1="${m.left}" x2="${f(m.left + plotW)}" y1="${f(y(v))}" y2="${f(y(v))}"/>`,
      `<text class="tick" x="${m.left - 5}" y="${f(y(v) + 4)}" text-anchor="end">${v}</text>`,
    );
  }
  parts.push(
    `<text class="axis-title" transform="translate(11 ${f(m.top + plotH / 2)}) rotate(-90)" text-anchor="middle">vBMD (${UNIT_MG_CM3})</text>`,
    `<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${f(m.top + plotH)}"/>`,
    `<line class="axis" x1="${m.left}" x2="${f(m.left + plotW)}" y1="${f(m.top + plotH)}" y2="${f(m.top + plotH)}"/>`,
  );
  for (const t of timeTicks(tMin, tMax, Math.floor(plotW / (narrow ? 46 : 70)))) {
    parts.push(
      `<line class="axis" x1="${f(x(t.tMs))}" x2="${f(x(t.tMs))}" y1="${f(m.top + plotH)}" y2="${f(m.top + plotH + 5)}"/>`,
      `<text class="tick" x="${f(x(t.tMs))}" y="${f(m.top + plotH + 18)}" text-anchor="middle">${esc(t.label)}</text>`,
    );
  }
}

/** Per-level series under the summary: thin, dashed, coloured, small diamonds, named at their last point. */
function levelSeries(fr: Frame, trend: Trend, shownLevels: Trend['levels'], parts: string[]): void {
  const { x, y } = fr;
  shownLevels.forEach((l) => {
    const i = trend.levels.indexOf(l);
    const attrs = `data-level="${esc(l.level)}" stroke="${levelColor(i)}"`;
    if (l.points.length > 1) {
      parts.push(`<polyline class="level-line" ${attrs} fill="none" stroke-dasharray="${levelDash(i)}" points="${l.points.map((p) => `${f(x(p.tMs))},${f(y(p.vbmdMgCm3))}`).join(' ')}"/>`);
    }
    for (const p of l.points) {
      const cx = x(p.tMs);
      const cy = y(p.vbmdMgCm3);
      parts.push(
        `<path class="level-point" ${attrs} fill="${levelColor(i)}" d="M${f(cx)} ${f(cy - 3.5)}L${f(cx + 3.5)} ${f(cy)}L${f(cx)} ${f(cy + 3.5)}L${f(cx - 3.5)} ${f(cy)}Z"><title>${esc(`${l.level} ${date(p.tMs)}: ${p.vbmdMgCm3.toFixed(1)} ${UNIT_MG_CM3}`)}</title></path>`,
      );
    }
    const last = l.points[l.points.length - 1];
    if (last) parts.push(`<text class="level-label" data-level="${esc(l.level)}" fill="${levelColor(i)}" x="${f(x(last.tMs) + 6)}" y="${f(y(last.vbmdMgCm3) + 4)}">${esc(l.level)}</text>`);
  });
}

/** Summary series: one point per study, thick solid line, the rate's fitted line over it, then the markers. */
function summarySeries(fr: Frame, trend: Trend, opts: ChartOptions, rate: RateOfChange | null, parts: string[]): void {
  const { x, y } = fr;
  if (trend.summary.length > 1) {
    parts.push(`<polyline class="summary-line" fill="none" points="${trend.summary.map((p) => `${f(x(p.tMs))},${f(y(p.vbmdMgCm3))}`).join(' ')}"/>`);
  }
  if (rate) {
    const at = (t: number): number => rate.fit.interceptAtT0 + rate.fit.slopePerYear * ((t - rate.fit.t0Ms) / MS_PER_YEAR);
    parts.push(
      `<line class="fit-line" data-testid="fit-line" x1="${f(x(rate.fromMs))}" y1="${f(y(at(rate.fromMs)))}" x2="${f(x(rate.toMs))}" y2="${f(y(at(rate.toMs)))}"><title>${esc(`Fitted line: ${rate.mgCm3PerYear.toFixed(1)} ${UNIT_MG_CM3} per year`)}</title></line>`,
    );
  }
  const r = trend.summary.length > 24 ? 4 : 5;
  for (const p of trend.summary) {
    const hi = p.observationId === opts.highlight;
    const cls = `point point-${categoryForVbmd(p.vbmdMgCm3)}${hi ? ' point-highlight' : ''}${p.uncalibrated ? ' point-uncalibrated' : ''}${rate && (p.tMs < rate.fromMs || p.tMs > rate.toMs) ? ' point-outside' : ''}`;
    const cx = x(p.tMs);
    const cy = y(p.vbmdMgCm3);
    parts.push(studyMarker(p, cx, cy, hi ? r + 2 : r, cls, pointTitle(p), f));
    // Above the marker's top (a triangle reaches 1.35 r above its centre).
    const top = (hi ? r + 2 : r) * (p.contrast ? 1.35 : 1);
    if (p.thoracic) parts.push(`<text class="point-tag" data-testid="thoracic-tag" x="${f(cx)}" y="${f(cy - top - 4)}" text-anchor="middle">T</text>`);
  }
}

export function renderTrendChart(trend: Trend, opts: ChartOptions): string {
  const shownLevels = trend.levels.filter((l) => opts.showLevels.has(l.level));
  const fr = chartFrame(trend, opts, shownLevels);
  const rate = opts.rate ?? null;
  const parts: string[] = chartHead(trend, opts, rate);
  bandsAndWindow(fr, rate, parts);
  axes(fr, parts);
  levelSeries(fr, trend, shownLevels, parts);
  summarySeries(fr, trend, opts, rate, parts);
  parts.push('</svg>');
  return parts.join('');
}
