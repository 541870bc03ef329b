import { randomUUID } from 'node:crypto';
import type { ServiceRequest } from 'fhir/r4.js';
import type { CdsCard, CdsLink, CdsSuggestion } from './card-types.js';
import { ACR_BANDS_TEXT, CARD_SOURCE, OVERRIDE_REASONS, clampSummary, formatMgCm3, isoDate, mdText } from './card-text.js';
import { declineRate } from './decline-rate.js';
import type { DeclineRate } from './decline-rate.js';
import type { OsteoporosisRisk, VbmdResult } from './vbmd-results.js';

/**
 * The patient-view alert. One card at most, and none when the latest result is normal and stable or there
 * is no result (no alert fatigue): `warning` for the osteoporosis range or a fast decline, `info` for the
 * osteopenia range. The detail says what the number is and is not (an opportunistic CT measurement, a
 * thoracic extrapolation when it is one, preliminary when uncalibrated), so nobody treats it as a DXA.
 */
export const CPT_SYSTEM = 'http://www.ama-assn.org/go/cpt';
/** CPT 77080: DXA bone density study, axial skeleton (the guideline confirmation of a CT finding). */
export const DXA_ORDER_CODE = { system: CPT_SYSTEM, code: '77080', display: 'DXA bone density study, axial skeleton' } as const;
/** Fixed id of the DXA suggestion, so feedback (acceptedSuggestions) can be counted per suggestion kind. */
export const DXA_SUGGESTION_UUID = '5d0f6c3e-6f7b-4d43-9a39-7b9a4d1f0a77';

export interface PatientViewCardOptions {
  patientId: string;
  /** Fast decline when vBMD falls at least this many % per year. */
  declinePctPerYear: number;
  /** The SMART app launch URL (`.../smart/launch.html`). */
  smartLaunchUrl: string;
  newUuid?: () => string;
}

export interface PatientViewFindings {
  latest: VbmdResult;
  rate: DeclineRate | null;
  fastDecline: boolean;
}

export function patientViewFindings(results: readonly VbmdResult[], declinePctPerYear: number): PatientViewFindings | null {
  const latest = results[0];
  if (!latest) return null;
  const rate = declineRate(results);
  return { latest, rate, fastDecline: rate !== null && rate.percentPerYear <= -declinePctPerYear };
}

/** `results` newest first (readVbmdResults). */
export function patientViewCards(results: readonly VbmdResult[], risk: OsteoporosisRisk | undefined, options: PatientViewCardOptions): CdsCard[] {
  const f = patientViewFindings(results, options.declinePctPerYear);
  if (!f) return [];
  const { latest, rate, fastDecline } = f;
  if (latest.category === 'normal' && !fastDecline) return [];
  const date = isoDate(latest.effectiveMs);
  const value = formatMgCm3(latest.vbmdMgCm3);
  const falling = fastDecline && rate ? `, falling ${Math.abs(rate.percentPerYear).toFixed(1)}%/yr` : '';
  let summary: string;
  if (latest.category === 'osteoporosis') summary = `Bone density in osteoporosis range: vBMD ${value} on CT of ${date}${falling}`;
  else if (latest.category === 'osteopenia') summary = `Low bone density (osteopenia range): vBMD ${value} on CT of ${date}${falling}`;
  else summary = `Bone density falling fast: ${Math.abs(rate!.percentPerYear).toFixed(1)}%/yr, vBMD now ${value} (CT of ${date})`;
  const indicator = latest.category === 'osteoporosis' || fastDecline ? 'warning' : 'info';
  const newUuid = options.newUuid ?? randomUUID;

  const link: CdsLink = {
    label: 'Open the bone density trend (vBMD app)',
    url: options.smartLaunchUrl,
    type: 'smart',
    ...(latest.observationId ? { appContext: JSON.stringify({ observation: `Observation/${latest.observationId}` }) } : {}),
  };
  return [
    {
      uuid: newUuid(),
      summary: clampSummary(summary),
      indicator,
      detail: patientViewDetail(results, f, risk, options.declinePctPerYear),
      source: { ...CARD_SOURCE, topic: { ...CARD_SOURCE.topic } },
      suggestions: [dxaSuggestion(options.patientId, latest)],
      selectionBehavior: 'at-most-one',
      overrideReasons: OVERRIDE_REASONS.map((r) => ({ ...r })),
      links: [link],
    },
  ];
}

function categoryText(c: VbmdResult['category']): string {
  return c === 'osteoporosis' ? 'osteoporosis range' : c === 'osteopenia' ? 'low bone density (osteopenia) range' : 'normal range';
}

export function patientViewDetail(results: readonly VbmdResult[], f: PatientViewFindings, risk: OsteoporosisRisk | undefined, declinePctPerYear: number): string {
  const { latest, rate, fastDecline } = f;
  const lines: string[] = [];
  lines.push(
    `**Vertebral trabecular vBMD ${formatMgCm3(latest.vbmdMgCm3)}**: ${categoryText(latest.category)}, from the CT of ${isoDate(latest.effectiveMs)}` +
      (latest.levelsText ? ` (levels used: ${mdText(latest.levelsText)})` : '') +
      '.',
  );
  lines.push('', `${ACR_BANDS_TEXT}.`);
  if (latest.levels.length > 0) {
    lines.push('', '| Level | vBMD (mg/cm3) |', '|---|---|');
    for (const l of latest.levels) {
      lines.push(`| ${mdText(l.level)} | ${l.vbmdMgCm3 !== null ? l.vbmdMgCm3.toFixed(1) : mdText(l.absentReason ?? 'not measured')} |`);
    }
  }
  lines.push('');
  if (rate) {
    lines.push(
      `**Trend:** ${rate.percentPerYear >= 0 ? '+' : ''}${rate.percentPerYear.toFixed(1)}%/year (${rate.mgCm3PerYear >= 0 ? '+' : ''}${rate.mgCm3PerYear.toFixed(1)} mg/cm3/year) ` +
        `over ${((rate.toMs - rate.fromMs) / (365.25 * 86_400_000)).toFixed(1)} years, ${rate.results} results` +
        (fastDecline ? `: faster than the ${declinePctPerYear}%/year alert threshold.` : '.'),
    );
  } else if (results.length > 1) {
    lines.push(`**Trend:** ${results.length} results, too close together in time (< 6 months) for a reliable rate.`);
  } else {
    lines.push('**Trend:** one result so far; no rate yet.');
  }
  if (risk && (risk.qualitativeRisk || risk.probability !== undefined)) {
    lines.push(
      '',
      `**Osteoporosis risk:** ${risk.qualitativeRisk ?? 'n/a'}` + (risk.probability !== undefined ? ` (model probability ${risk.probability.toFixed(2)})` : '') + '.',
    );
  }
  if (latest.basis === 'thoracic-extrapolated' || latest.basis === 'single-level') {
    lines.push(
      '',
      `> **Caveat:** the ACR thresholds are defined on the mean of two lumbar vertebrae; this value comes from ${
        latest.basis === 'single-level' ? 'a single vertebra' : 'the lowest measurable thoracic/upper lumbar levels of a chest CT'
      }, so the category is an extrapolation.`,
    );
  }
  if (latest.status === 'preliminary') {
    lines.push('', '> **Preliminary:** no scanner calibration was available (nominal HU conversion); on synthetic phantoms that conversion erred by about 12-16 mg/cm3.');
  }
  lines.push('', 'Opportunistic measurement from a routine CT, not a diagnostic DXA: confirm by DXA before starting treatment.');
  return lines.join('\n');
}

function dxaSuggestion(patientId: string, latest: VbmdResult): CdsSuggestion {
  const order: ServiceRequest = {
    resourceType: 'ServiceRequest',
    status: 'draft',
    intent: 'proposal',
    code: { coding: [{ ...DXA_ORDER_CODE }], text: 'DXA bone density, axial skeleton (hip and spine)' },
    subject: { reference: `Patient/${patientId}` },
    reasonCode: [{ text: `Opportunistic CT vBMD ${formatMgCm3(latest.vbmdMgCm3)} (${categoryText(latest.category)}) on ${isoDate(latest.effectiveMs)}` }],
    ...(latest.observationId ? { reasonReference: [{ reference: `Observation/${latest.observationId}` }] } : {}),
  };
  return {
    label: 'Order a DXA bone density scan (CPT 77080)',
    uuid: DXA_SUGGESTION_UUID,
    isRecommended: latest.category === 'osteoporosis',
    actions: [{ type: 'create', description: 'Propose a DXA of the hip and spine to confirm the CT finding', resource: order }],
  };
}
