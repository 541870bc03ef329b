import { randomUUID } from 'node:crypto';
import type { ServiceRequest } from 'fhir/r4.js';
import type { FractureFinding } from '../src/fhir/finding-reader.js';
import { isFastDecline } from '../src/trend/rate-of-change.js';
import type { Change } from '../src/trend/significant-change.js';
import { changeSincePrevious, describeChange } from '../src/trend/significant-change.js';
import { contrastMix } from '../src/trend/contrast-mix.js';
import { CAVEAT, categoryRange, contrastMixWords, resultHeadline } from '../src/fhir/result-words.js';
import type { CareContext } from './care-context.js';
import { careInPlace } from './care-context.js';
import type { CdsCard, CdsLink, CdsSuggestion } from './card-types.js';
import { ACR_BANDS_TEXT, CARD_SOURCE, OVERRIDE_REASONS, clampSummary, formatMgCm3, isoDate, mdText } from './card-text.js';
import { declineRate } from './decline-rate.js';
import type { DeclineRate } from './decline-rate.js';
import type { OsteoporosisRisk, VbmdResult } from './vbmd-results.js';

/**
 * The patient-view alert. One card at most, and none when the latest result is normal and stable with no
 * fracture, or there is no result. `warning` for the osteoporosis range, a vertebral fracture, or a decline
 * that is both fast and beyond the least significant change, unless care is already in place (bone-
 * protective therapy, a DXA in the last two years, a DXA ordered): then the same card is `info` and says
 * so. `info` for the osteopenia range. No DXA suggestion when a DXA was done recently or is ordered. The
 * detail says what the number is and is not (an opportunistic CT measurement, a thoracic extrapolation when
 * it is one, uncalibrated when it is), so nobody treats it as a DXA.
 */
export const CPT_SYSTEM = 'http://www.ama-assn.org/go/cpt';
/** CPT 77080: DXA bone density study, axial skeleton (the guideline confirmation of a CT finding). */
export const DXA_ORDER_CODE = { system: CPT_SYSTEM, code: '77080', display: 'DXA bone density study, axial skeleton' } as const;
/** Kind of a suggestion, kept with its per-card uuid so feedback can be counted per kind. */
export const DXA_SUGGESTION_KIND = 'order-dxa';

export interface PatientViewCardOptions {
  patientId: string;
  /** Fast decline when vBMD falls at least this many % per year (and beyond the least significant change). */
  declinePctPerYear: number;
  /** The SMART app launch URL (`.../smart/launch.html`). */
  smartLaunchUrl: string;
  newUuid?: () => string;
}

export interface PatientViewInputs {
  /** Newest first (vbmd-results.ts readVbmdResults). */
  results: readonly VbmdResult[];
  risk?: OsteoporosisRisk;
  /** Current vertebral fracture findings (src/fhir/finding-reader.ts). */
  fractures?: readonly FractureFinding[];
  /** Unknown everywhere when not given. */
  care?: CareContext;
}

export interface PatientViewFindings {
  latest: VbmdResult;
  rate: DeclineRate | null;
  /** Fast and beyond the least significant change (src/trend/rate-of-change.ts isFastDecline). */
  fastDecline: boolean;
  /** The latest result against the previous one. */
  change: Change | null;
  fractures: readonly FractureFinding[];
}

const UNKNOWN_CARE: CareContext = { therapy: 'unknown', recentDxaMs: 'unknown', dxaOrdered: 'unknown' };

export function patientViewFindings(results: readonly VbmdResult[], declinePctPerYear: number, fractures: readonly FractureFinding[] = []): PatientViewFindings | null {
  const latest = results[0];
  if (!latest) return null;
  const rate = declineRate(results);
  const change = changeSincePrevious(results.map((r) => ({ tMs: r.effectiveMs, vbmdMgCm3: r.vbmdMgCm3 })));
  return { latest, rate, fastDecline: isFastDecline(rate, declinePctPerYear), change, fractures };
}

function fractureText(fractures: readonly FractureFinding[]): string {
  return fractures.map((f) => `${f.level} (Genant ${f.grade})`).join(', ');
}

function summaryOf(f: PatientViewFindings): string {
  const { latest, rate, fastDecline, fractures } = f;
  const date = isoDate(latest.effectiveMs);
  const value = formatMgCm3(latest.vbmdMgCm3);
  const falling = fastDecline && rate ? `, falling ${Math.abs(rate.percentPerYear).toFixed(1)}%/yr` : '';
  if (fractures.length) return `Vertebral fracture on CT: ${fractureText(fractures)}; vBMD ${value} (${categoryRange(latest.category)})`;
  // The same headline the SMART app shows (src/fhir/result-words.ts).
  if (latest.category === 'osteoporosis' || latest.category === 'osteopenia') return `${resultHeadline(latest.category, value, date)}${falling}`;
  return `Bone density falling fast: ${Math.abs(rate!.percentPerYear).toFixed(1)}%/yr, vBMD now ${value} (CT of ${date})`;
}

export function patientViewCards(inputs: PatientViewInputs, options: PatientViewCardOptions): CdsCard[] {
  const f = patientViewFindings(inputs.results, options.declinePctPerYear, inputs.fractures ?? []);
  if (!f) return [];
  const { latest, fastDecline, fractures } = f;
  if (latest.category === 'normal' && !fastDecline && fractures.length === 0) return [];
  const care = inputs.care ?? UNKNOWN_CARE;
  const concern = latest.category === 'osteoporosis' || fastDecline || fractures.length > 0;
  // Care in place: the card informs, it does not warn (CDS Hooks indicator semantics: warning = act now).
  const indicator = concern && !careInPlace(care) ? 'warning' : 'info';
  const newUuid = options.newUuid ?? randomUUID;
  const dxaDoneOrOrdered = typeof care.recentDxaMs === 'number' || care.dxaOrdered === true;

  const link: CdsLink = {
    label: 'Open the bone density trend (vBMD app)',
    url: options.smartLaunchUrl,
    type: 'smart',
    ...(latest.observationId ? { appContext: JSON.stringify({ observation: `Observation/${latest.observationId}` }) } : {}),
  };
  const suggestions = dxaDoneOrOrdered ? [] : [dxaSuggestion(options.patientId, latest, newUuid(), concern && care.therapy === null)];
  return [
    {
      uuid: newUuid(),
      summary: clampSummary(summaryOf(f)),
      indicator,
      detail: patientViewDetail(inputs.results, f, inputs.risk, options.declinePctPerYear, care),
      source: { ...CARD_SOURCE, topic: { ...CARD_SOURCE.topic } },
      ...(suggestions.length ? { suggestions, selectionBehavior: 'at-most-one' as const } : {}),
      overrideReasons: OVERRIDE_REASONS.map((r) => ({ ...r })),
      links: [link],
    },
  ];
}

function careLines(care: CareContext): string[] {
  const out: string[] = [];
  if (typeof care.therapy === 'string' && care.therapy !== 'unknown') out.push(`on bone-protective therapy (${mdText(care.therapy)})`);
  if (typeof care.recentDxaMs === 'number') out.push(`DXA on ${isoDate(care.recentDxaMs)}`);
  if (care.dxaOrdered === true) out.push('a DXA is already ordered');
  const unknown = [care.therapy === 'unknown' ? 'bone-protective therapy' : '', care.recentDxaMs === 'unknown' ? 'recent DXA' : '', care.dxaOrdered === 'unknown' ? 'DXA orders' : ''].filter(Boolean);
  const lines: string[] = [];
  if (out.length) lines.push(`**Care in place:** ${out.join('; ')}. This card is for information; no DXA order is suggested when one is done or ordered.`);
  if (unknown.length) lines.push(`Could not check ${unknown.join(', ')} (not in the data sent to this service).`);
  return lines;
}

function trendLine(results: readonly VbmdResult[], f: PatientViewFindings, declinePctPerYear: number): string {
  const { rate, fastDecline, change } = f;
  const since = change ? ` Since the previous CT (${isoDate(change.fromMs)}): ${describeChange(change)}.` : '';
  if (rate) {
    const rateText = `${rate.percentPerYear >= 0 ? '+' : ''}${rate.percentPerYear.toFixed(1)}%/year (${rate.mgCm3PerYear >= 0 ? '+' : ''}${rate.mgCm3PerYear.toFixed(1)} mg/cm3/year) over ${((rate.toMs - rate.fromMs) / (365.25 * 86_400_000)).toFixed(1)} years, ${rate.results} results`;
    const verdict = fastDecline
      ? `: faster than the ${declinePctPerYear}%/year alert threshold and beyond the least significant change.`
      : rate.change && rate.change.verdict === 'within-measurement-error'
        ? ': the change over this period is within measurement error.'
        : '.';
    const mix = contrastMix(results.map((r) => ({ tMs: r.effectiveMs, contrastEnhanced: r.contrastEnhanced })), rate.fromMs, rate.toMs);
    return `**Trend:** ${rateText}${verdict}${mix.mixed ? ` ${contrastMixWords(mix.contrast, mix.other)}` : ''}${since}`;
  }
  if (results.length > 1) return `**Trend:** ${results.length} results, too close together in time (< 6 months) for a reliable rate.${since}`;
  return '**Trend:** one result so far; no rate yet.';
}

export function patientViewDetail(
  results: readonly VbmdResult[],
  f: PatientViewFindings,
  risk: OsteoporosisRisk | undefined,
  declinePctPerYear: number,
  care: CareContext = UNKNOWN_CARE,
): string {
  const { latest, fractures } = f;
  const lines: string[] = [];
  if (fractures.length) {
    lines.push(
      `**Vertebral compression fracture** on CT at ${fractures.map((x) => `${mdText(x.level)} (Genant grade ${x.grade}${x.effectiveMs !== null ? `, CT of ${isoDate(x.effectiveMs)}` : ''})`).join(', ')}: a fragility fracture is often more actionable than the density; consider fracture-risk assessment.`,
      '',
    );
  }
  const levels = latest.summaryLevels.length ? ` (levels used: ${mdText(latest.summaryLevels.join(' and '))})` : '';
  lines.push(`**Vertebral trabecular vBMD ${formatMgCm3(latest.vbmdMgCm3)}**: ${categoryRange(latest.category)}, from the CT of ${isoDate(latest.effectiveMs)}${levels}.`);
  lines.push('', `${ACR_BANDS_TEXT}.`);
  if (latest.levels.length > 0) {
    lines.push('', '| Level | vBMD (mg/cm3) |', '|---|---|');
    for (const l of latest.levels) lines.push(`| ${mdText(l.level)} | ${l.vbmdMgCm3 !== null ? l.vbmdMgCm3.toFixed(1) : mdText(l.exclusionReason ?? 'not measured')} |`);
  }
  lines.push('', trendLine(results, f, declinePctPerYear));
  if (risk && (risk.qualitativeRisk || risk.probability !== undefined)) {
    lines.push('', `**Osteoporosis risk:** ${risk.qualitativeRisk ?? 'n/a'}` + (risk.probability !== undefined ? ` (model probability ${risk.probability.toFixed(2)})` : '') + '.');
  }
  const careText = careLines(care);
  if (careText.length) lines.push('', ...careText.flatMap((t, i) => (i ? ['', t] : [t])));
  if (latest.basis === 'thoracic-extrapolated' || latest.basis === 'single-level') {
    lines.push(
      '',
      `> **${CAVEAT.thoracic.title}:** ${CAVEAT.thoracic.text(
        latest.basis === 'single-level' ? 'a single vertebra' : 'the lowest measurable thoracic/upper lumbar levels of a chest CT',
      )}`,
    );
  }
  if (latest.uncalibrated) {
    lines.push('', `> **${CAVEAT.uncalibrated.title}:** ${CAVEAT.uncalibrated.text}`);
  }
  if (latest.contrastEnhanced) lines.push('', `> **${CAVEAT.contrast.title}:** ${CAVEAT.contrast.text}`);
  lines.push('', CAVEAT.opportunistic);
  return lines.join('\n');
}

function dxaSuggestion(patientId: string, latest: VbmdResult, uuid: string, recommended: boolean): CdsSuggestion {
  const order: ServiceRequest = {
    resourceType: 'ServiceRequest',
    status: 'draft',
    intent: 'proposal',
    code: { coding: [{ ...DXA_ORDER_CODE }], text: 'DXA bone density, axial skeleton (hip and spine)' },
    subject: { reference: `Patient/${patientId}` },
    reasonCode: [{ text: `Opportunistic CT vBMD ${formatMgCm3(latest.vbmdMgCm3)} (${categoryRange(latest.category)}) on ${isoDate(latest.effectiveMs)}` }],
    ...(latest.observationId ? { reasonReference: [{ reference: `Observation/${latest.observationId}` }] } : {}),
  };
  return {
    label: 'Order a DXA bone density scan (CPT 77080)',
    uuid,
    isRecommended: recommended,
    actions: [{ type: 'create', description: 'Propose a DXA of the hip and spine to confirm the CT finding', resource: order }],
  };
}
