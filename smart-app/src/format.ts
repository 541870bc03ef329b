import type { BmdCategory } from '../../src/bmd/report.js';
import { ACR_BANDS_WORDS, categoryLabel } from '../../src/fhir/result-words.js';

/** Display helpers. Every number the app shows goes through one of these, with its unit. */

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

export const UNIT_MG_CM3 = 'mg/cm³';

export function mgCm3(v: number | null): string {
  return v === null ? 'no value' : `${v.toFixed(1)} ${UNIT_MG_CM3}`;
}

export function signed(v: number, digits = 1): string {
  const s = v.toFixed(digits);
  return v > 0 ? `+${s}` : s.replace('-', '−');
}

// The reader's own time zone: a CT at 23:30 local time is that day's study, not the next UTC day's.
const DATE = new Intl.DateTimeFormat('en-GB', { year: 'numeric', month: 'short', day: 'numeric' });

export function date(ms: number): string {
  return DATE.format(new Date(ms));
}

/** Category labels in the one vocabulary of card, app and FHIR text (src/fhir/result-words.ts). */
export const CATEGORY_LABEL: Record<BmdCategory, string> = {
  normal: categoryLabel('normal'),
  osteopenia: categoryLabel('osteopenia'),
  osteoporosis: categoryLabel('osteoporosis'),
  indeterminate: categoryLabel('indeterminate'),
};

/** ACR QCT thresholds as shown in the app. */
export const ACR_TEXT = `ACR QCT: ${ACR_BANDS_WORDS.replace(/ \(mg\/cm3, ACR QCT\)$/, '').replace(/-/g, '–')} (mg/cm³)`;
