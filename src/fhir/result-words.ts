import type { BmdCategory } from '../bmd/report.js';

/**
 * The words for a vBMD result: one vocabulary for the SMART app, the CDS cards and the FHIR text
 * (Observation interpretation and reference ranges, DiagnosticReport conclusion), so a clinician reads the
 * same term and the same caveat wherever a result is shown. Browser-safe (the app bundles it), like
 * result-reader.ts, whose results these words describe.
 *
 * The 80-120 mg/cm3 band is "low bone density (osteopenia)": the ACR QCT practice parameter's term (low
 * BMD), with the familiar word beside it; never "osteopenia" alone in one place and "low bone density" in
 * another.
 */
export const CATEGORY_TERM: Record<BmdCategory, string> = {
  normal: 'normal',
  osteopenia: 'low bone density (osteopenia)',
  osteoporosis: 'osteoporosis',
  indeterminate: 'indeterminate',
};

/** "osteoporosis range", "low bone density (osteopenia) range", "normal range", "indeterminate". */
export function categoryRange(c: BmdCategory): string {
  return c === 'indeterminate' ? CATEGORY_TERM.indeterminate : `${CATEGORY_TERM[c]} range`;
}

/** categoryRange with a capital: the app's category label and the start of a headline. */
export function categoryLabel(c: BmdCategory): string {
  const r = categoryRange(c);
  return r.charAt(0).toUpperCase() + r.slice(1);
}

/** The ACR QCT bands in words (ACR-SPR-SSR practice parameter for QCT, 2018). */
export const ACR_BANDS_WORDS = `> 120 ${CATEGORY_TERM.normal}, 80-120 ${CATEGORY_TERM.osteopenia}, < 80 ${CATEGORY_TERM.osteoporosis} (mg/cm3, ACR QCT)`;

/** One result in one line: the card's summary and the app's alert say it the same way.
 * `value` and `date` come formatted by the caller (units and date style of its medium). */
export function resultHeadline(c: BmdCategory, value: string, date: string): string {
  return `${categoryLabel(c)}: vBMD ${value} on CT of ${date}`;
}

/** The caveats a result can carry, each a title and one sentence. */
export const CAVEAT = {
  contrast: {
    title: 'Contrast-enhanced CT',
    text: 'vBMD reads higher than without contrast, so osteoporosis may be under-called.',
  },
  uncalibrated: {
    title: 'Uncalibrated',
    text: 'no scanner calibration was available (nominal HU conversion, which erred by about 12-16 mg/cm3 on synthetic phantoms): use the value as a rough screen only.',
  },
  thoracic: {
    title: 'Thoracic extrapolation',
    text: (levels: string): string =>
      `the ACR thresholds are defined on the mean of two lumbar vertebrae; this value comes from ${levels}, so its category is an extrapolation.`,
  },
  opportunistic: 'Opportunistic measurement from a routine CT, not a diagnostic DXA: confirm by DXA before starting treatment.',
} as const;

/** A rate of change over CTs with and without contrast: said wherever the rate is shown. */
export function contrastMixWords(contrast: number, other: number): string {
  return `The rate mixes ${contrast} contrast-enhanced and ${other} other CT${other === 1 ? '' : 's'}: contrast reads higher, so part of the change may be the contrast, not the bone.`;
}
