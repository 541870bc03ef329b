import { ACR_TEXT, CATEGORY_LABEL, date, esc, mgCm3, signed, UNIT_MG_CM3 } from './format.js';
import type { PatientSummary, RiskSummary, VbmdStudy } from './model.js';
import type { LatestLevel, RateOfChange, Trend } from './trend.js';
import { FAST_DECLINE_PCT_PER_YEAR } from './trend.js';
import type { Change } from '../../src/trend/significant-change.js';
import { describeChange } from '../../src/trend/significant-change.js';

/** HTML fragments of the app's views. All data goes through esc(); numbers carry their unit. */

export function patientBanner(p: PatientSummary): string {
  const bits = [
    p.gender ? `<span><span class="k">Sex</span> ${esc(p.gender)}</span>` : '',
    p.birthDate ? `<span><span class="k">Born</span> ${esc(p.birthDate)}</span>` : '',
    p.identifier ? `<span><span class="k">MRN</span> ${esc(p.identifier)}</span>` : '',
  ].join('');
  return `<section class="banner" aria-label="Patient" data-testid="patient-banner"><strong class="name">${esc(p.name)}</strong>${bits}</section>`;
}

export function alertsView(latest: VbmdStudy | null, rate: RateOfChange | null): string {
  const items: string[] = [];
  if (latest && latest.category === 'osteoporosis') {
    items.push(
      `<li class="alert alert-critical" data-testid="alert-osteoporosis"><strong>Osteoporosis range.</strong> Latest vBMD ${mgCm3(latest.vbmdMgCm3)} on ${date(latest.effectiveMs)} is below 80 ${UNIT_MG_CM3} (ACR QCT). Consider fracture-risk assessment and bone-protective treatment.</li>`,
    );
  }
  if (rate?.fastDecline) {
    items.push(
      `<li class="alert alert-warning" data-testid="alert-decline"><strong>Fast decline.</strong> vBMD is falling ${signed(rate.mgCm3PerYear)} ${UNIT_MG_CM3} per year (${signed(rate.percentPerYear)} % per year) over ${rate.studies} studies from ${date(rate.fromMs)} to ${date(rate.toMs)}; faster than ${FAST_DECLINE_PCT_PER_YEAR} % per year, and beyond the least significant change (${rate.change ? esc(describeChange(rate.change)) : ''}).</li>`,
    );
  }
  if (latest && latest.uncalibrated) {
    items.push(
      `<li class="alert alert-info" data-testid="alert-uncalibrated"><strong>Uncalibrated result.</strong> The latest value uses a nominal calibration (typical error 12–16 ${UNIT_MG_CM3}): use it as a rough screen only.</li>`,
    );
  }
  if (items.length === 0) return `<section class="alerts" aria-labelledby="alerts-h"><h2 id="alerts-h" class="visually-hidden">Alerts</h2><p class="muted" data-testid="no-alerts">No alerts.</p></section>`;
  return `<section class="alerts" aria-labelledby="alerts-h"><h2 id="alerts-h" class="visually-hidden">Alerts</h2><ul role="list">${items.join('')}</ul></section>`;
}

export function rateView(rate: RateOfChange | null, count: number, change: Change | null = null): string {
  const since = change
    ? ` <span data-testid="change">Since the previous study (${date(change.fromMs)}): ${esc(describeChange(change))}.</span>`
    : '';
  if (!rate) {
    return `<p class="rate muted" data-testid="rate">Rate of change: ${count < 2 ? 'needs at least two studies' : 'needs studies at least 6 months apart within 3 years'}.${since}</p>`;
  }
  return `<p class="rate" data-testid="rate">Rate of change (least squares, last ${rate.studies} studies since ${date(rate.fromMs)}): <strong>${signed(rate.mgCm3PerYear)} ${UNIT_MG_CM3}/year</strong> (${signed(rate.percentPerYear)} %/year).${since}</p>`;
}

export function levelToggles(trend: Trend, shown: ReadonlySet<string>): string {
  if (trend.levels.length === 0) return '';
  const boxes = trend.levels
    .map(
      (l, i) =>
        `<label class="lvl"><input type="checkbox" name="level" value="${esc(l.level)}"${shown.has(l.level) ? ' checked' : ''}><span class="swatch swatch-${i % 8}" aria-hidden="true"></span>${esc(l.level)}</label>`,
    )
    .join('');
  return `<fieldset class="levels" data-testid="level-toggles"><legend>Show vertebral levels</legend>${boxes}</fieldset>`;
}

export function valuesTable(studies: readonly VbmdStudy[]): string {
  const rows = [...studies]
    .sort((a, b) => b.effectiveMs - a.effectiveMs)
    .map(
      (s) =>
        `<tr><td>${date(s.effectiveMs)}</td><td class="num">${mgCm3(s.vbmdMgCm3)}</td><td>${esc(CATEGORY_LABEL[s.category])}</td><td>${esc((s.summaryLevels.length ? s.summaryLevels : s.levels.filter((l) => l.included).map((l) => l.level)).join(', ') || '–')}</td></tr>`,
    )
    .join('');
  return `<details class="table-toggle"><summary>Show all ${studies.length} results as a table</summary><table data-testid="values-table"><caption class="visually-hidden">vBMD results by CT study, newest first</caption><thead><tr><th scope="col">Study date</th><th scope="col">vBMD (${UNIT_MG_CM3})</th><th scope="col">Category</th><th scope="col">Levels used</th></tr></thead><tbody>${rows}</tbody></table></details>`;
}

export function studyDetails(s: VbmdStudy, fromContext: boolean): string {
  const levels = s.levels
    .map(
      (l) =>
        `<tr class="${l.included ? 'used' : 'excluded'}"><th scope="row">${esc(l.level)}</th><td class="num">${l.included ? mgCm3(l.vbmdMgCm3) : '–'}</td><td>${
          !l.included ? `Excluded: ${esc(l.exclusionReason ?? 'not measured')}` : s.summaryLevels.includes(l.level) ? 'In the summary' : 'Measured, not in the summary'
        }</td></tr>`,
    )
    .join('');
  const caveat =
    s.basis === 'thoracic-extrapolated' || s.basis === 'single-level'
      ? `<p class="caveat" data-testid="extrapolation-caveat"><strong>Thoracic extrapolation.</strong> The ACR thresholds are defined on two lumbar vertebrae; this chest CT result uses ${esc((s.summaryLevels.length ? s.summaryLevels : s.levels.filter((l) => l.included).map((l) => l.level)).join(' and ') || 'other levels')}, so its category is extrapolated.</p>`
      : '';
  const contrastBox = s.contrastEnhanced
    ? '<p class="caveat" data-testid="contrast-caveat"><strong>Contrast-enhanced scan.</strong> Iodinated contrast raises trabecular attenuation, so vBMD reads higher than on a non-contrast scan and osteoporosis may be under-called.</p>'
    : '';
  const otherNotes = s.notes.filter((n) => !n.startsWith('Calibration:') && !n.startsWith('Computed by'));
  return `<section class="card" aria-labelledby="details-h" data-testid="study-details" data-observation="${esc(s.observationId)}">
<h2 id="details-h">${fromContext ? 'Study from the alert' : 'Latest study'}: ${date(s.effectiveMs)}</h2>
<p class="big"><span data-testid="latest-value">${mgCm3(s.vbmdMgCm3)}</span> <span class="cat cat-${s.category}" data-testid="latest-category">${esc(CATEGORY_LABEL[s.category])}</span>${s.uncalibrated ? ' <span class="badge">Uncalibrated</span>' : ''}</p>
<p class="muted small">${esc(ACR_TEXT)}</p>
${caveat}${contrastBox}
<dl class="facts">
<dt>Basis</dt><dd>${esc(s.basisText)}</dd>
<dt>Calibration</dt><dd data-testid="calibration">${esc(s.calibration ?? 'Not stated in the result')}</dd>
<dt>Model / device</dt><dd data-testid="model">${esc(s.device ?? 'Not stated in the result')}</dd>
<dt>CT study</dt><dd>${esc(s.imagingStudy?.display ?? s.imagingStudy?.reference ?? 'Not linked')}</dd>
</dl>
${levels ? `<table class="levels-table" data-testid="levels-table"><caption>Vertebral levels</caption><thead><tr><th scope="col">Level</th><th scope="col">vBMD (${UNIT_MG_CM3})</th><th scope="col">Status</th></tr></thead><tbody>${levels}</tbody></table>` : ''}
${otherNotes.length ? `<details><summary>All notes (${otherNotes.length})</summary><ul>${otherNotes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></details>` : ''}
</section>`;
}

export function latestLevelsView(levels: readonly LatestLevel[]): string {
  if (levels.length === 0) return '';
  const rows = levels.map((l) => `<tr><th scope="row">${esc(l.level)}</th><td class="num">${mgCm3(l.vbmdMgCm3)}</td><td>${date(l.effectiveMs)}</td></tr>`).join('');
  return `<section class="card" aria-labelledby="bylevel-h"><h2 id="bylevel-h">Latest value per level</h2><table data-testid="latest-by-level"><thead><tr><th scope="col">Level</th><th scope="col">vBMD (${UNIT_MG_CM3})</th><th scope="col">Study date</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

export function riskView(r: RiskSummary | null | 'unavailable'): string {
  if (r === 'unavailable') return `<section class="card" aria-labelledby="risk-h"><h2 id="risk-h">Risk assessment</h2><p class="muted" data-testid="risk">Not available: the EHR did not let the app read risk assessments.</p></section>`;
  if (!r) return `<section class="card" aria-labelledby="risk-h"><h2 id="risk-h">Risk assessment</h2><p class="muted" data-testid="risk">No risk assessment on record.</p></section>`;
  const prob = r.probability !== undefined ? `${(r.probability * 100).toFixed(0)} %` : 'not given';
  return `<section class="card" aria-labelledby="risk-h"><h2 id="risk-h">Risk assessment</h2><p data-testid="risk">${esc(r.outcome)}: <strong>${esc(r.qualitativeRisk ?? 'risk not graded')}</strong>, probability ${prob}${r.occurrence ? ` (${date(Date.parse(r.occurrence))})` : ''}.</p></section>`;
}

export function noDataView(): string {
  return `<section class="empty" data-testid="state-no-data" role="status"><h2>No bone-density results yet</h2><p>This patient has no vBMD results from CT. Results appear here after a chest or abdominal CT is analysed (usually within an hour of the study reaching the PACS).</p></section>`;
}

export { errorView } from './error-view.js';
export type { ErrorKind } from './error-view.js';
