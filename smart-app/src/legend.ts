import { esc } from './format.js';
import { levelColor, levelDash } from './chart.js';
import type { RateOfChange, Trend } from './trend.js';

/**
 * The chart's legend as HTML beside the SVG (it wraps on a narrow screen). Each entry draws the same shape
 * as the chart, so what a mark means never rests on colour alone; only marks that are on the chart are
 * listed.
 */
const glyph = (body: string): string => `<svg class="glyph" width="22" height="14" viewBox="0 0 22 14" aria-hidden="true" focusable="false">${body}</svg>`;

export function legendView(trend: Trend, rate: RateOfChange | null, shown: ReadonlySet<string>): string {
  const s = trend.summary;
  const items: [string, string, string][] = [
    ['summary', glyph('<line class="summary-line" x1="1" y1="7" x2="21" y2="7"/><circle class="point point-legend" cx="11" cy="7" r="4"/>'), 'Summary vBMD, one point per CT study'],
  ];
  if (rate) {
    items.push(
      ['rate-window', glyph('<rect class="rate-window" x="1" y="1" width="20" height="12"/>'), `Shaded: the ${rate.studies} studies the rate of change uses`],
      ['fit-line', glyph('<line class="fit-line" x1="1" y1="11" x2="21" y2="3"/>'), 'Fitted line (least squares)'],
    );
  }
  if (s.some((p) => p.contrast)) items.push(['contrast', glyph('<path class="point point-legend" d="M11 1.5L17 12H5Z"/>'), 'Triangle: contrast-enhanced CT (reads higher)']);
  if (s.some((p) => p.thoracic)) items.push(['thoracic', glyph('<text class="point-tag" x="11" y="11" text-anchor="middle">T</text>'), 'T: thoracic extrapolation']);
  if (s.some((p) => p.uncalibrated)) {
    items.push(['uncalibrated', glyph('<circle class="point point-legend point-uncalibrated" cx="11" cy="7" r="4.5"/>'), 'Hollow: uncalibrated (typical error 12–16 mg/cm³)']);
  }
  trend.levels.forEach((l, i) => {
    if (!shown.has(l.level)) return;
    items.push([
      `level-${l.level}`,
      glyph(`<line class="level-line" stroke="${levelColor(i)}" stroke-dasharray="${levelDash(i)}" x1="1" y1="7" x2="21" y2="7"/><path fill="${levelColor(i)}" d="M11 3.5L14.5 7L11 10.5L7.5 7Z"/>`),
      `${l.level} alone (dashed)`,
    ]);
  });
  return `<ul class="legend" data-testid="chart-legend" aria-label="Chart legend">${items
    .map(([key, g, text]) => `<li data-legend="${esc(key)}">${g}<span>${esc(text)}</span></li>`)
    .join('')}</ul>`;
}
