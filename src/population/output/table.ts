import type { CohortRow } from '../aggregate.js';
import type { CohortSummary } from '../query.js';
import { describeQuery } from './group.js';

const fmt = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));

/** The terminal table: the columns an analyst scans first, then the counts. */
export function* cohortTable(rows: Iterable<CohortRow>, summary: CohortSummary, maxRows = Infinity): Generator<string> {
  const header = ['patient', 'latest', 'vBMD', 'category', 'basis', 'scans', '%/yr', 'therapy'];
  const widths = [20, 10, 6, 14, 22, 5, 7, 22];
  const line = (cells: string[]) =>
    `${cells.map((c, i) => (i === 2 || i === 5 || i === 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd()}\n`;
  yield line(header);
  yield line(widths.map((w) => '-'.repeat(w)));
  let shown = 0;
  for (const r of rows) {
    if (shown >= maxRows) break;
    shown++;
    const patient = r.patient.length > 20 ? `${r.patient.slice(0, 19)}~` : r.patient;
    yield line([
      patient,
      (r.latestEffective ?? '-').slice(0, 10),
      fmt(r.latestVbmdMgCm3),
      r.category + (r.latestScanIndeterminate && r.latestVbmdMgCm3 !== null ? '*' : ''),
      r.basis ?? '-',
      String(r.scans),
      r.trend ? fmt(r.trend.pctPerYear) : '-',
      r.therapy === 'active' ? `active: ${r.activeTherapy ?? ''}` : r.therapy,
    ]);
  }
  if (summary.matched > shown) yield `... ${summary.matched - shown} more rows (use --format csv or --out FILE for all)\n`;
  yield '\n';
  yield* summaryLines(summary);
}

export function* summaryLines(s: CohortSummary): Generator<string> {
  const c = s.byCategory;
  yield `Query: ${describeQuery(s.query)}; source ${s.source}; therapy value set ${s.valueSet}; as of ${s.asOf.slice(0, 10)}\n`;
  yield `Matched ${s.matched} of ${s.patients} patients with a vBMD result (${s.scansRead} scans).\n`;
  yield `All patients by latest category: osteoporosis ${c.osteoporosis}, osteopenia ${c.osteopenia}, normal ${c.normal}, indeterminate ${c.indeterminate}.\n`;
  if (s.byMonth.length > 0) {
    yield 'Scans by month (osteoporosis/osteopenia/normal/indeterminate):\n';
    for (const m of s.byMonth) yield `  ${m.month}  ${String(m.scans).padStart(6)}  (${m.osteoporosis}/${m.osteopenia}/${m.normal}/${m.indeterminate})\n`;
  }
  const skipped = Object.entries(s.skipped).filter(([k, v]) => v > 0 && k !== 'not-vbmd' && k !== 'not-bone-therapy' && k !== 'other-resource-type');
  if (skipped.length > 0) yield `Not counted: ${skipped.map(([k, v]) => `${v} ${k}`).join(', ')}.\n`;
  yield '* the newest scan was indeterminate; the value shown is the latest measured one.\n';
}
