import { CARD_SUMMARY_MAX } from './card-types.js';
import type { CdsCoding } from './card-types.js';
import { VBMD_CODE_SYSTEM } from '../src/fhir/codes.js';

/** Shared wording and codings for the cards. */
export const CARD_SOURCE = {
  label: 'vbmd: bone density from routine CT',
  topic: { system: VBMD_CODE_SYSTEM, code: 'vbmd-cds', display: 'Opportunistic CT bone density (vBMD)' },
} as const;

export const ACR_BANDS_TEXT = 'ACR QCT thresholds: > 120 normal, 80-120 low bone density (osteopenia), < 80 osteoporosis (mg/cm3)';

export const OVERRIDE_REASON_SYSTEM = 'https://vbmd.org/fhir/CodeSystem/cds-override-reason';
export const OVERRIDE_REASONS: CdsCoding[] = [
  { system: OVERRIDE_REASON_SYSTEM, code: 'already-treated', display: 'Already on bone-targeted therapy' },
  { system: OVERRIDE_REASON_SYSTEM, code: 'dxa-done-or-planned', display: 'DXA already done or planned' },
  { system: OVERRIDE_REASON_SYSTEM, code: 'measurement-doubtful', display: 'Measurement doubtful (artifact, hardware, contrast, lesion)' },
  { system: OVERRIDE_REASON_SYSTEM, code: 'not-relevant-now', display: 'Not relevant to care now (e.g. goals of care)' },
];

export function formatMgCm3(v: number): string {
  return `${v.toFixed(1)} mg/cm3`;
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Text from FHIR resources placed in Markdown: no markup, links, HTML or table breaks. */
export function mdText(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+!|<>~]/g, (c) => `\\${c}`).replace(/\s+/g, ' ').trim();
}

export function clampSummary(s: string): string {
  return s.length <= CARD_SUMMARY_MAX ? s : `${s.slice(0, CARD_SUMMARY_MAX - 1).trimEnd()}…`;
}
