import { rocCurve } from './metrics.js';

/**
 * Small hand-written SVG plots for the evaluation (scatter, Bland-Altman, ROC): no chart dependency, text
 * files that diff in git and open in any browser. Each series has its own colour and a legend entry.
 */
export interface Series {
  name: string;
  colour: string;
  x: readonly number[];
  y: readonly number[];
}

const W = 560;
const H = 420;
const M = { l: 64, r: 16, t: 36, b: 52 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceTicks(lo: number, hi: number, count = 6): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

interface Frame {
  sx: (v: number) => number;
  sy: (v: number) => number;
  parts: string[];
}

function frame(title: string, xLabel: string, yLabel: string, xr: [number, number], yr: [number, number]): Frame {
  const sx = (v: number): number => M.l + ((v - xr[0]) / (xr[1] - xr[0] || 1)) * (W - M.l - M.r);
  const sy = (v: number): number => H - M.b - ((v - yr[0]) / (yr[1] - yr[0] || 1)) * (H - M.t - M.b);
  const parts: string[] = [
    `<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#333"/>`,
  ];
  for (const t of niceTicks(xr[0], xr[1])) {
    parts.push(`<line x1="${sx(t).toFixed(1)}" y1="${H - M.b}" x2="${sx(t).toFixed(1)}" y2="${H - M.b + 4}" stroke="#333"/>`);
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${H - M.b + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  for (const t of niceTicks(yr[0], yr[1])) {
    parts.push(`<line x1="${M.l - 4}" y1="${sy(t).toFixed(1)}" x2="${M.l}" y2="${sy(t).toFixed(1)}" stroke="#333"/>`);
    parts.push(`<text x="${M.l - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${t}</text>`);
  }
  parts.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 12}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  parts.push(`<text x="16" y="${(M.t + H - M.b) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${(M.t + H - M.b) / 2})">${esc(yLabel)}</text>`);
  return { sx, sy, parts };
}

/** Legend top-left (scatter, Bland-Altman) or bottom-right (ROC, whose curves fill the top-left). */
function legend(f: Frame, items: { name: string; colour: string }[], corner: 'top-left' | 'bottom-right' = 'top-left'): void {
  items.forEach((it, i) => {
    const x = corner === 'top-left' ? M.l + 10 : W - M.r - 250;
    const y = corner === 'top-left' ? M.t + 14 + i * 16 : H - M.b - 10 - (items.length - 1 - i) * 16;
    f.parts.push(`<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${it.colour}"/>`);
    f.parts.push(`<text x="${x + 16}" y="${y}" font-size="11">${esc(it.name)}</text>`);
  });
}

function svg(f: Frame): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n${f.parts.join('\n')}\n</svg>\n`;
}

function range(values: number[], pad = 0.05): [number, number] {
  const finite = values.filter(Number.isFinite);
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (!finite.length) return [0, 1];
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

function dots(f: Frame, s: Series): void {
  for (let i = 0; i < s.x.length; i++) {
    f.parts.push(`<circle cx="${f.sx(s.x[i]).toFixed(1)}" cy="${f.sy(s.y[i]).toFixed(1)}" r="2.2" fill="${s.colour}" fill-opacity="0.55"/>`);
  }
}

function hline(f: Frame, xr: [number, number], y: number, colour: string, dash: string, label: string): void {
  f.parts.push(`<line x1="${f.sx(xr[0]).toFixed(1)}" y1="${f.sy(y).toFixed(1)}" x2="${f.sx(xr[1]).toFixed(1)}" y2="${f.sy(y).toFixed(1)}" stroke="${colour}" stroke-dasharray="${dash}"/>`);
  f.parts.push(`<text x="${(f.sx(xr[1]) - 4).toFixed(1)}" y="${(f.sy(y) - 3).toFixed(1)}" text-anchor="end" font-size="10" fill="${colour}">${esc(label)}</text>`);
}

/** Measured vs reference with the identity line and the ACR thresholds (80, 120 mg/cm3). */
export function scatterSvg(title: string, series: Series[]): string {
  const all = series.flatMap((s) => [...s.x, ...s.y]);
  const r = range(all);
  const f = frame(title, 'reference vBMD (mg/cm3)', 'measured vBMD (mg/cm3)', r, r);
  f.parts.push(`<line x1="${f.sx(r[0])}" y1="${f.sy(r[0])}" x2="${f.sx(r[1])}" y2="${f.sy(r[1])}" stroke="#999"/>`);
  for (const t of [80, 120]) {
    if (t > r[0] && t < r[1]) {
      f.parts.push(`<line x1="${f.sx(t).toFixed(1)}" y1="${M.t}" x2="${f.sx(t).toFixed(1)}" y2="${H - M.b}" stroke="#ccc" stroke-dasharray="3 3"/>`);
      f.parts.push(`<line x1="${M.l}" y1="${f.sy(t).toFixed(1)}" x2="${W - M.r}" y2="${f.sy(t).toFixed(1)}" stroke="#ccc" stroke-dasharray="3 3"/>`);
    }
  }
  for (const s of series) dots(f, s);
  legend(f, series);
  return svg(f);
}

/** Bland-Altman: difference (measured - reference) against the mean of the two, bias and 95% LoA lines. */
export function blandAltmanSvg(title: string, s: Series, stats: { bias: number; lower: number; upper: number }): string {
  const mean = s.x.map((x, i) => (x + s.y[i]) / 2);
  const diff = s.x.map((x, i) => s.y[i] - x);
  const xr = range(mean);
  const yr = range([...diff, stats.lower, stats.upper, 0], 0.1);
  const f = frame(title, 'mean of measured and reference (mg/cm3)', 'measured - reference (mg/cm3)', xr, yr);
  hline(f, xr, 0, '#999', '2 2', '0');
  hline(f, xr, stats.bias, '#000', '', `bias ${stats.bias.toFixed(2)}`);
  hline(f, xr, stats.upper, '#c00', '6 3', `+1.96 SD ${stats.upper.toFixed(2)}`);
  hline(f, xr, stats.lower, '#c00', '6 3', `-1.96 SD ${stats.lower.toFixed(2)}`);
  dots(f, { ...s, x: mean, y: diff });
  legend(f, [s]);
  return svg(f);
}

/** ROC curves; each series gives scores (higher = positive) in x and 0/1 truth in y. */
export function rocSvg(title: string, curves: { name: string; colour: string; scores: readonly number[]; positive: readonly boolean[]; auc: number }[]): string {
  const f = frame(title, '1 - specificity', 'sensitivity', [0, 1], [0, 1]);
  f.parts.push(`<line x1="${f.sx(0)}" y1="${f.sy(0)}" x2="${f.sx(1)}" y2="${f.sy(1)}" stroke="#ccc" stroke-dasharray="3 3"/>`);
  for (const c of curves) {
    const pts = rocCurve(c.scores, c.positive);
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${f.sx(p.falsePositiveRate).toFixed(1)},${f.sy(p.truePositiveRate).toFixed(1)}`).join(' ');
    f.parts.push(`<path d="${d}" fill="none" stroke="${c.colour}" stroke-width="1.8"/>`);
  }
  legend(f, curves.map((c) => ({ name: `${c.name} (AUC ${c.auc.toFixed(3)})`, colour: c.colour })), 'bottom-right');
  return svg(f);
}
