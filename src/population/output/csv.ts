import type { CohortRow } from '../aggregate.js';
import { COHORT_COLUMNS, flattenRow } from './flat-row.js';

/** RFC 4180: quote fields holding a comma, quote or line break; a leading =,+,-,@ is prefixed with ' so a
 * spreadsheet never runs a patient id as a formula (OWASP CSV injection). Numbers are written as numbers. */
export function csvField(v: string | number | boolean | null): string {
  if (v === null) return '';
  if (typeof v !== 'string') return String(v);
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export const CSV_HEADER = `${COHORT_COLUMNS.join(',')}\r\n`;

export function* cohortCsvRows(rows: Iterable<CohortRow>): Generator<string> {
  for (const r of rows) {
    const f = flattenRow(r);
    yield `${COHORT_COLUMNS.map((c) => csvField(f[c])).join(',')}\r\n`;
  }
}

export function* cohortCsv(rows: Iterable<CohortRow>): Generator<string> {
  yield CSV_HEADER;
  yield* cohortCsvRows(rows);
}
