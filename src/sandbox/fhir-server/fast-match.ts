import type { Resource } from '@medplum/fhirtypes';
import type { Filter, FhirPathAtom, SearchRequest } from '@medplum/core';
import { evalFhirPath, getSearchParameter, matchesSearchRequest, Operator, parseFhirPath } from '@medplum/core';

/**
 * Search matching for the in-process server, faster than @medplum/core's matchesSearchRequest for the
 * filters vbmd's clients send. Measured here: the stock matcher spends ~5 ms per resource on `patient`
 * (its expression ends in `.where(resolve() is Patient)`) and ~0.6 ms on a `code` token, which made the CDS
 * query `Observation?patient&code&_sort=-date` take ~100 ms over 300 results. Token and reference filters
 * with plain `eq` semantics are evaluated here on a pre-parsed path; everything else (dates, modifiers,
 * chains, OR lists) goes to the stock matcher, filter by filter, so results never differ (see the
 * differential test in test/fhir/memory-repository.test.ts). One deliberate difference: `patient=123` (a
 * bare id, as CDS Hooks prefetch templates send `{{context.patientId}}`) means Patient/123 here, as FHIR R4
 * search says for reference parameters; the stock matcher finds nothing for it.
 */

interface ParamPath {
  atom: FhirPathAtom;
  type: 'token' | 'reference';
  /** The expression had `.where(resolve() is Patient)`: only Patient references match. */
  patientOnly: boolean;
}

const atoms = new Map<string, FhirPathAtom>();
const paths = new Map<string, ParamPath | null>();

function paramPath(resourceType: string, code: string): ParamPath | null {
  const key = `${resourceType}.${code}`;
  const cached = paths.get(key);
  if (cached !== undefined) return cached;
  let found: ParamPath | null = null;
  const param = getSearchParameter(resourceType, code);
  if (param?.expression && (param.type === 'token' || param.type === 'reference')) {
    const parts = param.expression.split('|').map((x) => x.trim());
    const mine = parts.filter((p) => p.startsWith(`${resourceType}.`) || p.startsWith('Resource.'));
    const m = mine.length === 1 ? /^([A-Z][A-Za-z]+(?:\.[a-z][A-Za-z]*)+?)(\.where\(resolve\(\) is Patient\))?$/.exec(mine[0]) : null;
    if (m) {
      let atom = atoms.get(m[1]);
      if (!atom) atoms.set(m[1], (atom = parseFhirPath(m[1])));
      found = { atom, type: param.type, patientOnly: !!m[2] };
    }
  }
  paths.set(key, found);
  return found;
}

export function fastMatches(resource: Resource, req: SearchRequest): boolean {
  if (req.resourceType !== resource.resourceType) return false;
  for (const f of req.filters ?? []) {
    const r = fastFilter(resource, f);
    const ok = r ?? matchesSearchRequest(resource, { resourceType: req.resourceType, filters: [f] } as SearchRequest);
    if (!ok) return false;
  }
  return true;
}

/** The parameters decided here (their values are Identifier, Coding/CodeableConcept, code or Reference). */
const FAST_PARAMS = new Set(['identifier', 'code', 'category', 'status', 'intent', '_tag', '_security', 'patient', 'subject']);

/** true/false when decided here, undefined to ask the stock matcher. */
function fastFilter(resource: Resource, f: Filter): boolean | undefined {
  if (!FAST_PARAMS.has(f.code) || f.operator !== Operator.EQUALS || f.value.includes(',') || f.value.includes('\\')) return undefined;
  const p = paramPath(resource.resourceType, f.code);
  if (!p) return undefined;
  const values = evalFhirPath(p.atom, resource);
  if (p.type === 'token') {
    let any = false;
    for (const v of values) {
      const m = tokenMatches(v, f.value);
      if (m === undefined) return undefined;
      if (m) any = true;
    }
    return any;
  }
  let target = f.value;
  if (target.includes('://')) return undefined;
  if (!target.includes('/')) {
    if (!p.patientOnly) return undefined;
    target = `Patient/${target}`;
  }
  if (p.patientOnly && !target.startsWith('Patient/')) return false;
  return values.some((v) => (v as { reference?: unknown } | null)?.reference === target);
}

/** FHIR R4 token search: `code`, `system|code`, `|code` (no system), `system|` (any code in system). */
function tokenMatches(v: unknown, q: string): boolean | undefined {
  const bar = q.indexOf('|');
  const system = bar >= 0 ? q.slice(0, bar) : undefined;
  const code = bar >= 0 ? q.slice(bar + 1) : q;
  const one = (sys: unknown, c: unknown): boolean => {
    if (typeof c !== 'string') return false;
    if (system === undefined) return c === code;
    if (system === '') return (sys === undefined || sys === null || sys === '') && c === code;
    if (sys !== system) return false;
    return code === '' || c === code;
  };
  if (typeof v === 'string') return system === undefined ? v === code : undefined;
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (Array.isArray(o.coding)) return (o.coding as Record<string, unknown>[]).some((c) => one(c.system, c.code));
  if ('coding' in o || 'text' in o) return false; // CodeableConcept without codings
  if ('value' in o && !('code' in o)) return one(o.system, o.value); // Identifier
  if ('code' in o) return one(o.system, o.code); // Coding
  return undefined;
}
