import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { getReferenceString, parseSearchRequest, preconditionFailed } from '@medplum/core';
import type { FhirRepository } from '@medplum/fhir-router';

/**
 * Resolves a transaction's conditional creates (`request.ifNoneExist`) before @medplum/fhir-router sees the
 * Bundle, as FHIR R4 3.1.0.8.2 defines them: no match -> a plain create; one match -> nothing is created, the
 * entry answers 200 with the existing resource, and references to its fullUrl point at it; several matches
 * -> the whole transaction fails with 412.
 *
 * Why here: fhir-router refuses any transaction with a conditional entry and more than 8 entries ("requires
 * strict isolation"), a limit Medplum needs because its Postgres store must then run serializable. This
 * repository already runs every transaction alone (memory-repository.ts), so the cap only cut vbmd's result
 * sets short (a study with several fractured vertebrae). Must be called inside repository.withTransaction,
 * so nothing can create a match between the search and the write.
 */
export interface ResolvedTransaction {
  /** The Bundle without the matched entries, their fullUrls rewritten to the existing resources. */
  bundle: Bundle;
  /** Original entry index -> the response of a matched conditional create. */
  matched: Map<number, BundleEntry>;
}

export async function resolveConditionalCreates(bundle: Bundle, repo: FhirRepository): Promise<ResolvedTransaction | OperationOutcome> {
  const entries = bundle.entry ?? [];
  const matched = new Map<number, BundleEntry>();
  const rewrites = new Map<string, string>();
  const kept: BundleEntry[] = [];
  for (const [i, e] of entries.entries()) {
    const req = e.request;
    if (req?.method !== 'POST' || !req.ifNoneExist || !e.resource) {
      kept.push(e);
      continue;
    }
    const found = await repo.searchResources(parseSearchRequest(`${req.url}?${req.ifNoneExist}`));
    if (found.length > 1) {
      return preconditionFailedWith(`Bundle.entry[${i}]: the conditional create of ${req.url} matched ${found.length} resources`);
    }
    if (found.length === 1) {
      const existing = found[0] as Resource;
      const ref = getReferenceString(existing) ?? `${existing.resourceType}/${existing.id ?? ''}`;
      if (e.fullUrl) rewrites.set(e.fullUrl, ref);
      matched.set(i, {
        resource: existing,
        response: { status: '200', location: `${ref}/_history/${existing.meta?.versionId ?? '1'}` },
      });
      continue;
    }
    kept.push({ ...e, request: { method: 'POST', url: req.url } });
  }
  if (matched.size === 0 && kept.every((e, i) => e === entries[i])) return { bundle, matched };
  let text = JSON.stringify(kept);
  for (const [from, to] of rewrites) text = text.split(`"${from}"`).join(`"${to}"`);
  return { bundle: { ...bundle, entry: JSON.parse(text) as BundleEntry[] }, matched };
}

/** The transaction-response in the order of the original request: router answers for the kept entries,
 * the synthesized 200s for the matched ones. */
export function mergeTransactionResponse(response: Bundle, matched: Map<number, BundleEntry>, total: number): Bundle {
  if (matched.size === 0) return response;
  const routed = [...(response.entry ?? [])];
  const entry: BundleEntry[] = [];
  for (let i = 0; i < total; i++) entry.push(matched.get(i) ?? routed.shift() ?? {});
  return { ...response, entry };
}

function preconditionFailedWith(text: string): OperationOutcome {
  return { ...preconditionFailed, issue: [{ severity: 'error', code: 'processing', details: { text } }] };
}

export function isOperationOutcome(x: unknown): x is OperationOutcome {
  return (x as { resourceType?: unknown } | null)?.resourceType === 'OperationOutcome';
}
