import type { Group, GroupMember } from 'fhir/r4.js';
import { VBMD_SUMMARY_CODE } from '../../fhir/codes.js';
import type { CohortRow } from '../aggregate.js';
import type { CohortSummary } from '../query.js';

/** What the query asked, in words (Group.name and the text of its characteristics). */
export function describeQuery(q: CohortSummary['query']): string {
  const parts: string[] = [];
  if (q.category) parts.push(`latest vBMD category ${q.category}`);
  if (q.untreated) parts.push('no active bone-targeted therapy');
  if (q.decliningPctPerYear !== undefined) parts.push(`declining at least ${q.decliningPctPerYear} %/year`);
  if (q.since) parts.push(`scans since ${q.since}`);
  if (q.until) parts.push(`scans until ${q.until}`);
  return parts.length ? parts.join('; ') : 'all patients with a vBMD result';
}

function member(r: CohortRow): GroupMember {
  const m = /^identifier:([^|]*)\|(.*)$/.exec(r.patient);
  if (m) return { entity: { type: 'Patient', identifier: { ...(m[1] ? { system: m[1] } : {}), value: m[2] } } };
  if (/^(urn:|https?:)/.test(r.patient)) return { entity: { reference: r.patient, type: 'Patient' } };
  return { entity: { reference: `Patient/${r.patient}`, type: 'Patient' } };
}

/**
 * An R4 `Group` (type person, actual) of the cohort's patients: a snapshot a care team or a FHIR server can
 * store and act on (e.g. a Bulk Data Group export of just these patients). Streamed as text so 100k members
 * never become one big object.
 */
export function* cohortGroupJson(rows: Iterable<CohortRow>, summary: CohortSummary): Generator<string> {
  const head: Group = {
    resourceType: 'Group',
    meta: { lastUpdated: new Date().toISOString() },
    type: 'person',
    actual: true,
    name: `vbmd cohort: ${describeQuery(summary.query)}`,
    quantity: summary.matched,
    characteristic: [
      {
        code: { coding: [{ ...VBMD_SUMMARY_CODE }], text: 'Vertebral trabecular vBMD (QCT from CT) cohort criteria' },
        valueCodeableConcept: { text: `${describeQuery(summary.query)} (source ${summary.source}, as of ${summary.asOf})` },
        exclude: false,
      },
    ],
  };
  const text = JSON.stringify(head, null, 2);
  yield `${text.slice(0, text.lastIndexOf('}')).replace(/\s+$/, '')},\n  "member": [`;
  let first = true;
  for (const r of rows) {
    yield `${first ? '\n' : ',\n'}    ${JSON.stringify(member(r))}`;
    first = false;
  }
  yield `${first ? '' : '\n  '}]\n}\n`;
}
