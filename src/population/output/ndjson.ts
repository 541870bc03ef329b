import type { CohortRow } from '../aggregate.js';
import { flattenRow } from './flat-row.js';

export function* cohortNdjson(rows: Iterable<CohortRow>): Generator<string> {
  for (const r of rows) yield `${JSON.stringify(flattenRow(r))}\n`;
}
