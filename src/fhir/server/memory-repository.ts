import { AsyncLocalStorage } from 'node:async_hooks';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { SearchRequest, WithId } from '@medplum/core';
import { evalFhirPath, getSearchParameter } from '@medplum/core';
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
 * Search: the stock sort evaluates FHIRPath inside the comparator and compares JSON strings (slow over
 * hundreds of resources, and wrong for dates with different time-zone offsets). `search` here computes each
 * sort key once and compares dates as instants. Still not supported, by design of MemoryRepository:
 * quantity search (`value-quantity=lt80`) is not implemented reliably, nor `_include`/`_revinclude`, nor
 * chained parameters. Nothing in vbmd relies on them (EHR servers often lack them too).
 */
export class TransactionalMemoryRepository extends MemoryRepository {
  private readonly journal = new AsyncLocalStorage<Undo[]>();
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
    this.journal.getStore()?.push(() => super.deleteResource(created.resourceType, created.id));
    return created;
  }

  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    const undo = this.journal.getStore();
    const previous = undo && resource.id ? await this.readIfExists(resource.resourceType, resource.id) : undefined;
    const updated = await super.updateResource(resource, options);
    if (undo) {
      undo.push(async () => {
        if (previous) await super.updateResource(previous);
        else await super.deleteResource(updated.resourceType, updated.id);
      });
    }
    return updated;
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    const undo = this.journal.getStore();
    const previous = undo ? await this.readIfExists(resourceType, id) : undefined;
    await super.deleteResource(resourceType, id);
    if (undo && previous) undo.push(async () => void (await super.updateResource(previous)));
  }

  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const sortRules = searchRequest.sortRules;
    if (!sortRules?.length) return super.search(searchRequest);
    const all = await super.search({ ...searchRequest, sortRules: undefined, offset: undefined, count: undefined });
    const entries = (all.entry ?? []).map((entry) => ({
      entry,
      keys: sortRules.map((rule) => sortKey(entry, searchRequest.resourceType, rule.code)),
    }));
    entries.sort((a, b) => {
      for (let i = 0; i < sortRules.length; i++) {
        const ka = a.keys[i];
        const kb = b.keys[i];
        // Resources without a value go last in either direction (the newest-first view stays useful).
        if (ka === undefined || kb === undefined) {
          if (ka !== kb) return ka === undefined ? 1 : -1;
          continue;
        }
        const c = compareKeys(ka, kb);
        if (c !== 0) return sortRules[i].descending ? -c : c;
      }
      return 0;
    });
    const offset = searchRequest.offset ?? 0;
    const page = entries.slice(offset, searchRequest.count === undefined ? undefined : offset + searchRequest.count);
    return { ...all, entry: page.length ? page.map((e) => e.entry) : undefined };
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
  const values = evalFhirPath(param.expression, resource);
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
