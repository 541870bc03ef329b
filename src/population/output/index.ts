import type { CohortResult } from '../query.js';
import { cohortCsv } from './csv.js';
import { cohortGroupJson } from './group.js';
import { cohortNdjson } from './ndjson.js';
import { cohortTable } from './table.js';

export const COHORT_FORMATS = ['table', 'csv', 'ndjson', 'group'] as const;
export type CohortFormat = (typeof COHORT_FORMATS)[number];

/** The result as text chunks in the chosen format (written one chunk at a time; never one big string). */
export function cohortOutput(result: CohortResult, format: CohortFormat): Iterable<string> {
  switch (format) {
    case 'csv':
      return cohortCsv(result.rows);
    case 'ndjson':
      return cohortNdjson(result.rows);
    case 'group':
      return cohortGroupJson(result.rows, result.summary);
    case 'table':
      return cohortTable(result.rows, result.summary);
  }
}

export const COHORT_CONTENT_TYPES: Record<CohortFormat, string> = {
  table: 'text/plain; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  group: 'application/fhir+json; charset=utf-8',
};

export { cohortCsv, cohortGroupJson, cohortNdjson, cohortTable };
export { summaryLines } from './table.js';
export { cohortHistogramSvg, histogramOf } from './histogram-svg.js';
export { COHORT_COLUMNS, flattenRow } from './flat-row.js';
export type { FlatCohortRow } from './flat-row.js';
