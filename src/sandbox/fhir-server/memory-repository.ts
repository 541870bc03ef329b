import { AsyncLocalStorage } from 'node:async_hooks';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { FhirPathAtom, SearchRequest, WithId } from '@medplum/core';
import { evalFhirPath, getSearchParameter, Operator, parseFhirPath } from '@medplum/core';
import { fastMatches } from './fast-match.js';
import { MemoryRepository } from '@medplum/fhir-router';
import type { CreateResourceOptions, UpdateResourceOptions } from '@medplum/fhir-router';

type Undo = () => Promise<void>;

/**
 * @medplum/fhir-router's MemoryRepository with the two things a transaction needs and the stock class
 * lacks (its `withTransaction` just calls the callback):
 *  - isolation: transactions (and the conditional create/update/delete that run inside one) are serialized
 *    by a process-wide queue, so two concurrent conditional creates of the same identifier cannot both miss
 *    the search and both create (the duplicate a retry after a timeout would otherwise produce);
 *  - atomicity: every create/update/delete inside a transaction is journaled and undone if the transaction
 *    throws, so a failing entry leaves nothing half-written. Undoing an update writes the old content back
 *    as a new version (history keeps both), which is enough for a test and sandbox server.
 * Nested `withTransaction` calls (fhir-router's conditional create inside a transaction Bundle) join the
 * outer transaction.
 *
 * Search: the stock search scans every resource of the type with FHIRPath for every query, and every
 * conditional create runs such a search twice, so seeding N analyses costs O(N^2). Here searches that name an
 * exact identifier, `_tag`, or patient/subject use an in-memory index to pick candidates, then apply the same
 * matcher (@medplum/core matchesSearchRequest) to them. The stock sort evaluates FHIRPath inside the
 * comparator and compares JSON strings (slow over hundreds of resources, and wrong for dates with different
 * time-zone offsets); `search` here computes each sort key once and compares dates as instants.
 * Still not supported, by design of MemoryRepository:
 * quantity search (`value-quantity=lt80`) is not implemented reliably, nor `_include`/`_revinclude`, nor
 * chained parameters. Nothing in vbmd relies on them (EHR servers often lack them too).
 */
export class TransactionalMemoryRepository extends MemoryRepository {
  private readonly journal = new AsyncLocalStorage<Undo[]>();
  private readonly index = new SearchIndex();
  private queue: Promise<unknown> = Promise.resolve();

  override async withTransaction<TResult>(callback: (client: undefined) => Promise<TResult>): Promise<TResult> {
    if (this.journal.getStore()) return callback(undefined);
    const run = async (): Promise<TResult> => {
      const undo: Undo[] = [];
      try {
        return await this.journal.run(undo, () => callback(undefined));
      } catch (e) {
        for (const step of undo.reverse()) {
          await step().catch(() => undefined);
        }
        throw e;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  override async createResource<T extends Resource>(resource: T, _options?: CreateResourceOptions): Promise<WithId<T>> {
    const created = await super.createResource(resource);
    this.index.add(created);
    this.journal.getStore()?.push(() => this.rawDelete(created.resourceType, created.id));
    return created;
  }

  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    const undo = this.journal.getStore();
    const previous = undo && resource.id ? await this.readIfExists(resource.resourceType, resource.id) : undefined;
    const updated = await super.updateResource(resource, options);
    this.index.add(updated);
    if (undo) {
      undo.push(async () => {
        if (previous) await this.rawRestore(previous);
        else await this.rawDelete(updated.resourceType, updated.id);
      });
    }
    return updated;
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    const undo = this.journal.getStore();
    const previous = undo ? await this.readIfExists(resourceType, id) : undefined;
    await this.rawDelete(resourceType, id);
    if (undo && previous) undo.push(() => this.rawRestore(previous));
  }

  override clear(): void {
    super.clear();
    this.index.clear();
  }

  private async rawDelete(resourceType: string, id: string): Promise<void> {
    await super.deleteResource(resourceType, id);
    this.index.remove(resourceType, id);
  }

  private async rawRestore(resource: Resource): Promise<void> {
    this.index.add(await super.updateResource(resource));
  }

  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    // System-wide searches (`_type=...`) keep the stock implementation.
    if ((searchRequest.resourceType as string) === 'MultipleTypes') return super.search(searchRequest);
    const sortRules = searchRequest.sortRules;
    const candidates = this.index.candidates(searchRequest) ?? this.index.idsOfType(searchRequest.resourceType);
    // Match on the stored objects and copy only what is returned (readResource deep-clones every resource,
    // which dominated paging through thousands of Observations).
    const store = this.storeOf(searchRequest.resourceType);
    const matched: WithId<T>[] = [];
    for (const id of candidates) {
      const r = (store ? store.get(id) : await this.readIfExists(searchRequest.resourceType, id)) as WithId<T> | undefined;
      if (r && fastMatches(r, searchRequest as SearchRequest)) matched.push(r);
    }
    const all: Bundle<WithId<T>> = { resourceType: 'Bundle', type: 'searchset', entry: matched.map((resource) => ({ resource })), total: matched.length };
    if (!sortRules?.length) {
      const offset = searchRequest.offset ?? 0;
      const page = (all.entry ?? []).slice(offset, searchRequest.count === undefined ? undefined : offset + searchRequest.count);
      return { ...all, entry: page.length ? page.map((e) => ({ resource: copy(e.resource) })) : undefined };
    }
    const rules = sortRules;
    const entries = (all.entry ?? []).map((entry) => ({
      entry,
      keys: rules.map((rule) => sortKey(entry, searchRequest.resourceType, rule.code)),
    }));
    entries.sort((a, b) => {
      for (let i = 0; i < rules.length; i++) {
        const ka = a.keys[i];
        const kb = b.keys[i];
        // Resources without a value go last in either direction (the newest-first view stays useful).
        if (ka === undefined || kb === undefined) {
          if (ka !== kb) return ka === undefined ? 1 : -1;
          continue;
        }
        const c = compareKeys(ka, kb);
        if (c !== 0) return rules[i].descending ? -c : c;
      }
      return 0;
    });
    const offset = searchRequest.offset ?? 0;
    const page = entries.slice(offset, searchRequest.count === undefined ? undefined : offset + searchRequest.count);
    return { ...all, entry: page.length ? page.map((e) => ({ resource: copy(e.entry.resource) })) : undefined };
  }

  /** MemoryRepository 4.5.2 keeps resources in a private `resources: Map<type, Map<id, resource>>`; read it
   * without cloning when it is there (version pinned in package.json), else fall back to readResource. */
  private storeOf(resourceType: string): Map<string, Resource> | undefined {
    const all = (this as unknown as { resources?: unknown }).resources;
    if (!(all instanceof Map)) return undefined;
    const m = all.get(resourceType) as unknown;
    return m instanceof Map ? (m as Map<string, Resource>) : new Map();
  }

  private async readIfExists(resourceType: string, id: string): Promise<Resource | undefined> {
    try {
      return await super.readResource<Resource>(resourceType, id);
    } catch {
      return undefined;
    }
  }
}

type SortKey = number | string | undefined;

/** The smallest value of the search parameter's expression (FHIR sorts ascending by the lowest value);
 * dates as epoch milliseconds so offsets compare correctly. */
function sortKey(entry: BundleEntry, resourceType: string, code: string): SortKey {
  const resource = entry.resource;
  if (!resource) return undefined;
  if (code === '_lastUpdated') return dateKey(resource.meta?.lastUpdated);
  if (code === '_id') return resource.id;
  const param = getSearchParameter(resourceType, code);
  if (!param?.expression) return undefined;
  const values = evalFhirPath(sortAtom(resourceType, code, param.expression), resource);
  const keys: SortKey[] = values.map((v) => {
    if (typeof v === 'number') return v;
    if (typeof v === 'string') return param.type === 'date' ? dateKey(v) : v;
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.start === 'string') return dateKey(o.start);
      if (typeof o.value === 'number') return o.value;
      if (Array.isArray(o.coding)) return String((o.coding[0] as { code?: string } | undefined)?.code ?? '');
      if (typeof o.reference === 'string') return o.reference;
    }
    return undefined;
  });
  return keys.filter((k) => k !== undefined).sort(compareKeys)[0];
}

/** Shared parameters (`date`) have one expression for dozens of types; parse only this type's part, once. */
const sortAtoms = new Map<string, FhirPathAtom>();
function sortAtom(resourceType: string, code: string, expression: string): FhirPathAtom {
  const key = `${resourceType}.${code}`;
  let atom = sortAtoms.get(key);
  if (!atom) {
    const mine = expression
      .split('|')
      .map((x) => x.trim())
      .filter((x) => x.startsWith(`${resourceType}.`) || x.startsWith('Resource.'));
    atom = parseFhirPath(mine.length ? mine.join(' | ') : expression);
    sortAtoms.set(key, atom);
  }
  return atom;
}

function dateKey(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b));
}

/**
 * Exact-match index: `identifier` (system|value), `_tag` (system|code), and the subject/patient reference.
 * It only narrows the candidates; every candidate is still checked by matchesSearchRequest, so a stale or
 * missing entry can cost speed but never change a result... except a missing one, which is why every write
 * path (including transaction undo) goes through add/remove.
 */
class SearchIndex {
  private readonly byKey = new Map<string, Set<string>>();
  private readonly keysOf = new Map<string, string[]>();
  private readonly byType = new Map<string, Set<string>>();

  /** Every stored id of the type, in insertion order (the stock repository's order). */
  idsOfType(resourceType: string): Set<string> {
    return new Set(this.byType.get(resourceType) ?? []);
  }

  add(r: Resource): void {
    if (!r.id) return;
    this.unkey(r.resourceType, r.id);
    const keys: string[] = [];
    const o = r as Resource & {
      identifier?: { system?: string; value?: string }[];
      subject?: { reference?: string };
      patient?: { reference?: string };
    };
    for (const id of Array.isArray(o.identifier) ? o.identifier : []) {
      if (id.value) keys.push(`identifier:${id.system ?? ''}|${id.value}`);
    }
    for (const t of r.meta?.tag ?? []) if (t.code) keys.push(`_tag:${t.system ?? ''}|${t.code}`);
    for (const ref of [o.subject?.reference, o.patient?.reference]) {
      // Relative references only: an absolute one points at another server's patient.
      if (ref && /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(ref)) keys.push(`ref:${ref}`);
    }
    const docKey = `${r.resourceType}/${r.id}`;
    this.keysOf.set(docKey, keys);
    let ofType = this.byType.get(r.resourceType);
    if (!ofType) this.byType.set(r.resourceType, (ofType = new Set()));
    ofType.add(r.id);
    for (const k of keys) {
      const full = `${r.resourceType}:${k}`;
      let set = this.byKey.get(full);
      if (!set) this.byKey.set(full, (set = new Set()));
      set.add(r.id);
    }
  }

  remove(resourceType: string, id: string): void {
    this.unkey(resourceType, id);
    this.byType.get(resourceType)?.delete(id);
  }

  private unkey(resourceType: string, id: string): void {
    const docKey = `${resourceType}/${id}`;
    for (const k of this.keysOf.get(docKey) ?? []) this.byKey.get(`${resourceType}:${k}`)?.delete(id);
    this.keysOf.delete(docKey);
  }

  clear(): void {
    this.byKey.clear();
    this.keysOf.clear();
    this.byType.clear();
  }

  /** Ids that may match, from the most selective indexed filter; undefined when no filter is indexable. */
  candidates(req: SearchRequest): Set<string> | undefined {
    let best: Set<string> | undefined;
    for (const f of req.filters ?? []) {
      if (f.operator !== Operator.EQUALS || f.value.includes(',')) continue;
      let key: string | undefined;
      if (f.code === '_tag' && f.value.includes('|')) key = `_tag:${f.value}`;
      else if (f.code === 'identifier' && f.value.includes('|') && !f.value.startsWith('|') && indexedPath(req.resourceType, f.code) === 'identifier') {
        key = `identifier:${f.value}`;
      } else if ((f.code === 'patient' || f.code === 'subject') && ['subject', 'patient'].includes(indexedPath(req.resourceType, f.code) ?? '')) {
        if ((f.code === 'subject' && !f.value.includes('/')) || f.value.includes('://')) continue;
        key = `ref:${f.value.includes('/') ? f.value : `Patient/${f.value}`}`;
      }
      if (!key) continue;
      const set = this.byKey.get(`${req.resourceType}:${key}`) ?? new Set<string>();
      if (!best || set.size < best.size) best = set;
    }
    return best ? new Set(best) : undefined;
  }
}

/** The element a search parameter reads on this type when it is a plain path we index (`identifier`,
 * `subject`, `patient`, possibly restricted to Patient targets); undefined otherwise (e.g. Provenance's
 * `patient` reads `target`, so it is never answered from the index). */
function indexedPath(resourceType: string, code: string): string | undefined {
  const expr = getSearchParameter(resourceType, code)?.expression;
  if (!expr) return undefined;
  for (const part of expr.split('|').map((x) => x.trim())) {
    const m = new RegExp(`^${resourceType}\\.(identifier|subject|patient)(\\.where\\(resolve\\(\\) is Patient\\))?$`).exec(part);
    if (m) return m[1];
  }
  return undefined;
}

function copy<T>(r: T): T {
  return r === undefined ? r : (JSON.parse(JSON.stringify(r)) as T);
}
