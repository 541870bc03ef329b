import { CAVEAT, contrastMixWords, resultHeadline } from '../../src/fhir/result-words.js';
import type { Change } from '../../src/trend/significant-change.js';
import { describeChange } from '../../src/trend/significant-change.js';
import { ACR_TEXT, CATEGORY_LABEL, date, esc, mgCm3, signed, UNIT_MG_CM3 } from './format.js';
import type { PatientSummary, RiskSummary, VbmdStudy } from './model.js';
import type { LatestLevel, RateOfChange, Trend } from './trend.js';
import { FAST_DECLINE_PCT_PER_YEAR } from './trend.js';

/** HTML fragments of the app's views. All data goes through esc(); numbers carry their unit. The wording
 * of categories, headlines and caveats is the card's (src/fhir/result-words.ts). */

export function patientBanner(p: PatientSummary): string {
  const bits = [
    p.gender ? `<span><span class="k">Sex</span> ${esc(p.gender)}</span>` : '',
    p.birthDate ? `<span><span class="k">Born</span> ${esc(p.birthDate)}</span>` : '',
    p.identifier ? `<span><span class="k">MRN</span> ${esc(p.identifier)}</span>` : '',
  ].join('');
  return `<section class="banner" aria-label="Patient" data-testid="patient-banner"><strong class="name">${esc(p.name)}</strong>${bits}</section>`;
}

const levelsOf = (s: VbmdStudy): string[] => (s.summaryLevels.length ? s.summaryLevels : s.levels.filter((l) => l.included).map((l) => l.level));

/** Patient-level alerts about the latest result and the trend: the card's headline for the category. */
export function alertsView(latest: VbmdStudy | null, rate: RateOfChange | null): string {
  const items: string[] = [];
  if (latest && (latest.category === 'osteoporosis' || latest.category === 'osteopenia')) {
    const kind = latest.category === 'osteoporosis' ? 'critical' : 'info';
    items.push(
      `<li class="alert alert-${kind}" data-testid="alert-${latest.category}"><strong>${esc(resultHeadline(latest.category, mgCm3(latest.vbmdMgCm3), date(latest.effectiveMs)))}.</strong> ${esc(CAVEAT.opportunistic)}</li>`,
    );
  }
  if (rate?.fastDecline) {
    items.push(
      `<li class="alert alert-warning" data-testid="alert-decline"><strong>Fast decline:</strong> ${signed(rate.mgCm3PerYear)} ${UNIT_MG_CM3} per year (${signed(rate.percentPerYear)} % per year) over ${rate.studies} studies since ${date(rate.fromMs)}: faster than ${FAST_DECLINE_PCT_PER_YEAR} % per year and beyond the least significant change.${
        rate.contrast.mixed ? ` ${esc(contrastMixWords(rate.contrast.contrast, rate.contrast.other))}` : ''
      }</li>`,
    );
  }
  if (items.length === 0) return `<p class="muted" data-testid="no-alerts">No alerts.</p>`;
  return `<ul class="alerts" role="list" aria-label="Alerts">${items.join('')}</ul>`;
}

/** The caveats of one result, each a title and one sentence (the card's words). */
export function caveatsView(s: VbmdStudy): string {
  const items: string[] = [];
  if (s.basis === 'thoracic-extrapolated' || s.basis === 'single-level') {
    const levels = levelsOf(s).join(' and ') || 'other levels';
    items.push(`<li class="caveat" data-testid="extrapolation-caveat"><strong>${CAVEAT.thoracic.title}:</strong> ${esc(CAVEAT.thoracic.text(levels))}</li>`);
  }
  if (s.contrastEnhanced) items.push(`<li class="caveat" data-testid="contrast-caveat"><strong>${CAVEAT.contrast.title}:</strong> ${esc(CAVEAT.contrast.text)}</li>`);
  if (s.uncalibrated) items.push(`<li class="caveat" data-testid="uncalibrated-caveat"><strong>${CAVEAT.uncalibrated.title}:</strong> ${esc(CAVEAT.uncalibrated.text)}</li>`);
  return items.length ? `<ul class="caveats" role="list" aria-label="Caveats">${items.join('')}</ul>` : '';
}

/**
 * The first thing on the page: the result in focus (the study from the alert or launch context, else the
 * latest), its category and caveats, and the patient's alerts.
 */
export function summaryView(o: { focus: VbmdStudy; fromContext: boolean; latest: VbmdStudy | null; rate: RateOfChange | null; notes: string }): string {
  const s = o.focus;
  const latestLine =
    o.latest && o.latest !== s
      ? `<p class="small" data-testid="latest-elsewhere">Latest result: ${mgCm3(o.latest.vbmdMgCm3)} (${esc(CATEGORY_LABEL[o.latest.category])}) on ${date(o.latest.effectiveMs)}.</p>`
      : '';
  return `<section class="card summary" aria-labelledby="details-h" data-testid="study-details" data-observation="${esc(s.observationId)}">
<h2 id="details-h">${o.fromContext ? 'Study from the alert' : 'Latest result'}: CT of ${date(s.effectiveMs)}</h2>
<p class="big"><span class="value" data-testid="latest-value">${mgCm3(s.vbmdMgCm3)}</span> <span class="cat cat-${s.category}" data-testid="latest-category">${esc(CATEGORY_LABEL[s.category])}</span>${
    s.uncalibrated ? ' <span class="badge">Uncalibrated</span>' : ''
  }</p>
<p class="small muted">${esc(levelsOf(s).length ? `Mean of ${levelsOf(s).join(' and ')}. ` : '')}${esc(ACR_TEXT)}</p>
${latestLine}${o.notes}
${alertsView(o.latest, o.rate)}
${caveatsView(s)}
</section>`;
}

export function rateView(rate: RateOfChange | null, count: number, change: Change | null = null): string {
  const since = change ? ` <span data-testid="change">Since the previous study (${date(change.fromMs)}): ${esc(describeChange(change))}.</span>` : '';
  if (!rate) {
    return `<p class="rate muted" data-testid="rate">Rate of change: ${count < 2 ? 'needs at least two studies' : 'needs studies at least 6 months apart within 3 years'}.${since}</p>`;
  }
  const mix = rate.contrast.mixed ? ` <strong data-testid="contrast-mix">${esc(contrastMixWords(rate.contrast.contrast, rate.contrast.other))}</strong>` : '';
  return `<p class="rate" data-testid="rate">Rate of change: <strong>${signed(rate.mgCm3PerYear)} ${UNIT_MG_CM3}/year</strong> (${signed(rate.percentPerYear)} %/year), least squares over the ${rate.studies} studies from ${date(rate.fromMs)} to ${date(rate.toMs)} (shaded on the chart)${rate.change ? `; first to last of them: ${esc(describeChange(rate.change))}` : ''}.${mix}${since}</p>`;
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
    .map((s) => {
      const flags = [s.contrastEnhanced ? 'contrast' : '', s.uncalibrated ? 'uncalibrated' : ''].filter(Boolean).join(', ');
      return `<tr><td>${date(s.effectiveMs)}</td><td class="num">${mgCm3(s.vbmdMgCm3)}</td><td>${esc(CATEGORY_LABEL[s.category])}${flags ? ` <span class="muted">(${flags})</span>` : ''}</td><td>${esc(levelsOf(s).join(', ') || '–')}</td></tr>`;
    })
    .join('');
  return `<details class="table-toggle"><summary>Show all ${studies.length} results as a table</summary><table data-testid="values-table"><caption class="visually-hidden">vBMD results by CT study, newest first</caption><thead><tr><th scope="col">Study date</th><th scope="col">vBMD</th><th scope="col">Category</th><th scope="col">Levels used</th></tr></thead><tbody>${rows}</tbody></table></details>`;
}

/** How the focus result was made: basis, calibration, model, the CT, and every level with its status. */
export function studyFacts(s: VbmdStudy): string {
  const levels = s.levels
    .map(
      (l) =>
        `<tr class="${l.included ? 'used' : 'excluded'}"><th scope="row">${esc(l.level)}</th><td class="num">${l.included ? mgCm3(l.vbmdMgCm3) : '–'}</td><td>${
          !l.included ? `Excluded: ${esc(l.exclusionReason ?? 'not measured')}` : s.summaryLevels.includes(l.level) ? 'In the summary' : 'Measured, not in the summary'
        }</td></tr>`,
    )
    .join('');
  const otherNotes = s.notes.filter((n) => !n.startsWith('Calibration:') && !n.startsWith('Computed by'));
  return `<section class="card" aria-labelledby="facts-h" data-testid="study-facts">
<h2 id="facts-h">How this result was measured</h2>
${levels ? `<table class="levels-table" data-testid="levels-table"><caption>Vertebral levels</caption><thead><tr><th scope="col">Level</th><th scope="col">vBMD</th><th scope="col">Status</th></tr></thead><tbody>${levels}</tbody></table>` : ''}
<dl class="facts">
<dt>Basis</dt><dd>${esc(s.basisText)}</dd>
<dt>Calibration</dt><dd data-testid="calibration">${esc(s.calibration ?? 'Not stated in the result')}</dd>
<dt>Model / device</dt><dd data-testid="model">${esc(s.device ?? 'Not stated in the result')}</dd>
<dt>CT study</dt><dd>${esc(s.imagingStudy?.display ?? s.imagingStudy?.reference ?? 'Not linked')}</dd>
</dl>
${otherNotes.length ? `<details><summary>All notes (${otherNotes.length})</summary><ul>${otherNotes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></details>` : ''}
</section>`;
}

export function latestLevelsView(levels: readonly LatestLevel[]): string {
  if (levels.length === 0) return '';
  const rows = levels.map((l) => `<tr><th scope="row">${esc(l.level)}</th><td class="num">${mgCm3(l.vbmdMgCm3)}</td><td>${date(l.effectiveMs)}</td></tr>`).join('');
  return `<section class="card" aria-labelledby="bylevel-h"><h2 id="bylevel-h">Latest value per level</h2><table data-testid="latest-by-level"><thead><tr><th scope="col">Level</th><th scope="col">vBMD</th><th scope="col">Study date</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

export function riskView(r: RiskSummary | null | 'unavailable'): string {
  const head = '<section class="card" aria-labelledby="risk-h"><h2 id="risk-h">Risk assessment</h2>';
  if (r === 'unavailable') return `${head}<p class="muted" data-testid="risk">Not available: the EHR did not let the app read risk assessments.</p></section>`;
  if (!r) return `${head}<p class="muted" data-testid="risk">No risk assessment on record.</p></section>`;
  const prob = r.probability !== undefined ? `${(r.probability * 100).toFixed(0)} %` : 'not given';
  return `${head}<p data-testid="risk">${esc(r.outcome)}: <strong>${esc(r.qualitativeRisk ?? 'risk not graded')}</strong>, probability ${prob}${r.occurrence ? ` (${date(Date.parse(r.occurrence))})` : ''}.</p></section>`;
}

export function noDataView(): string {
  return `<section class="empty" data-testid="state-no-data" role="status"><h2>No bone-density results yet</h2><p>This patient has no vBMD results from CT. Results appear here after a chest or abdominal CT is analysed (usually within an hour of the study reaching the PACS).</p></section>`;
}

/** Shown above the data when the EHR session has ended: the data stays, with how old it is and how to go on. */
export function sessionEndedView(asOfMs: number, relaunchHref: string): string {
  return `<div class="session-ended" role="alert" data-testid="session-ended"><p><strong>Your session with the EHR has ended.</strong> The results below are as loaded at ${esc(
    new Date(asOfMs).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' }),
  )}; they are not updated. Sign in again to reload, or reopen the app from the patient’s chart.</p><a class="button" data-testid="relaunch" href="${esc(relaunchHref)}">Sign in again</a></div>`;
}

export { errorView } from './error-view.js';
export type { ErrorKind } from './error-view.js';
