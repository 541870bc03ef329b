import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import {
  allOk,
  badRequest,
  DEFAULT_MAX_SEARCH_COUNT,
  DEFAULT_SEARCH_COUNT,
  getStatus,
  isOk,
  isResourceType,
  normalizeOperationOutcome,
} from '@medplum/core';
import type { FhirRepository, FhirRequest, FhirResponse, HttpMethod } from '@medplum/fhir-router';
import { FhirRouter } from '@medplum/fhir-router';
import { ensureFhirDefinitions } from '../../fhir/definitions.js';
import { bulkExportHandler } from './bulk-export.js';
import { capabilityStatement } from './capability.js';
import { isOperationOutcome, mergeTransactionResponse, resolveConditionalCreates } from './conditional-creates.js';
import { TransactionalMemoryRepository } from './memory-repository.js';

/**
 * The in-process FHIR R4 server for tests and the sandbox: @medplum/fhir-router's REST semantics (read,
 * search, create, conditional create via If-None-Exist, update, delete, batch and transaction Bundles) over
 * an in-memory repository, behind express.
 *
 * What it adds over the stock router: atomic, serialized transactions (see memory-repository.ts); search
 * paging like a real server (default page 20, max 1000, `next`/`previous` links with `_offset`) because the
 * stock MemoryRepository returns everything without links; `fullUrl` on search entries; `_summary=count`;
 * `Location`/`ETag`; a CapabilityStatement at /metadata; and a hook for the SMART authorization server.
 *
 * Limits (do not build product features on them; EHR servers often lack them too): no quantity search
 * (`value-quantity`), no `_include`/`_revinclude`, no chained search, no `_elements`, no subscriptions; Bulk
 * Data `$export` at system level only (bulk-export.ts). Conditional creates in a transaction are resolved
 * inside the repository lock before fhir-router sees the Bundle (conditional-creates.ts), which lifts
 * fhir-router's 8-entry cap on such transactions. Data lives only as long as the process.
 */

export type AccessDecision = { ok: true } | { ok: false; status: 401 | 403 };

export interface FhirAppOptions {
  /** Called for every request except GET /metadata (open per SMART App Launch). */
  verifyAccess?: (req: Request) => Promise<AccessDecision>;
  /** Public base URL (e.g. `http://127.0.0.1:8080/fhir`); by default derived from each request. */
  baseUrl?: string;
  /** Share one store between apps (the sandbox seeds it directly). */
  repository?: FhirRepository;
  /** Advertised in the CapabilityStatement's SMART security extension when given. */
  oauthUris?: { token: string; authorize?: string };
}

export type FhirApp = express.Express & { repository: FhirRepository };

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export function createFhirApp(options: FhirAppOptions = {}): FhirApp {
  ensureFhirDefinitions();
  const repository = options.repository ?? new TransactionalMemoryRepository();
  const router = new FhirRouter();
  const app = express() as FhirApp;
  app.repository = repository;
  app.disable('x-powered-by');

  app.use(express.urlencoded({ extended: false, limit: '1mb' }));
  app.use(
    express.json({
      limit: '20mb',
      type: (req) => /^application\/(fhir\+|json-patch\+)?json\b/i.test(String(req.headers['content-type'] ?? '')),
    }),
  );

  const baseOf = (req: Request): string =>
    (options.baseUrl ?? `${req.protocol}://${req.get('host') ?? '127.0.0.1'}${req.baseUrl}`).replace(/\/+$/, '');

  app.get('/metadata', (req, res) => {
    sendJson(res, 200, capabilityStatement(baseOf(req), options.oauthUris));
  });

  if (options.verifyAccess) app.use(accessCheck(options.verifyAccess));

  const bulk = bulkExportHandler(repository, baseOf, !!options.verifyAccess);
  app.use((req: Request, res: Response, next: NextFunction) => {
    bulk(req, res, next).catch(next);
  });

  app.use((req: Request, res: Response, next: NextFunction) => {
    handle(req, res, (fhirReq) => runExclusive(router, repository, fhirReq), baseOf).catch(next);
  });

  app.use(fhirErrorHandler);
  return app;
}

/** `verifyAccess` as middleware: 401 (with WWW-Authenticate) or 403 as an OperationOutcome. */
function accessCheck(verify: NonNullable<FhirAppOptions['verifyAccess']>): express.RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    verify(req).then(
      (decision) => {
        if (decision.ok) return next();
        if (decision.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
        sendJson(res, decision.status, outcome('error', decision.status === 401 ? 'login' : 'forbidden',
          decision.status === 401 ? 'Missing or invalid access token' : 'The access token does not allow this request'));
      },
      (e: unknown) => next(e),
    );
  };
}

/** Malformed JSON, oversize bodies and unexpected faults: an OperationOutcome, never an HTML page. */
function fhirErrorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  const e = err as { status?: number; type?: string; message?: string };
  if (e?.type === 'entity.parse.failed') {
    sendJson(res, 400, badRequest('Request body is not valid JSON'));
    return;
  }
  if (e?.type === 'entity.too.large') {
    sendJson(res, 413, outcome('error', 'too-costly', 'Request body too large'));
    return;
  }
  const oo = normalizeOperationOutcome(err);
  sendJson(res, getStatus(oo) || 500, oo);
}

/**
 * fhir-router resolves a transaction's conditional creates (If-None-Exist -> which id each fullUrl becomes)
 * before it enters repo.withTransaction, so two concurrent transactions could both decide to create the
 * same Device and one would point its Observation at an id that is never written. Running the whole
 * transaction inside our repository's lock closes that window; a failed outcome is thrown inside the lock
 * so the journal rolls back, then answered as usual.
 */
async function runExclusive(router: FhirRouter, repository: FhirRepository, fhirReq: FhirRequest): Promise<FhirResponse> {
  if (!(repository instanceof TransactionalMemoryRepository) || !isTransaction(fhirReq.body) || fhirReq.method !== 'POST') {
    return router.handleRequest(fhirReq, repository);
  }
  try {
    return await repository.withTransaction(async () => {
      const body = fhirReq.body as Bundle;
      const resolved = body.type === 'transaction' ? await resolveConditionalCreates(body, repository) : { bundle: body, matched: new Map<number, never>() };
      if (isOperationOutcome(resolved)) throw new TransactionFailed([resolved]);
      // Every entry was a matched conditional create (a retry of a committed write): nothing left to route.
      if (!resolved.bundle.entry?.length && resolved.matched.size) {
        return [allOk, mergeTransactionResponse({ resourceType: 'Bundle', type: 'transaction-response', entry: [] }, resolved.matched, body.entry?.length ?? 0)] as FhirResponse;
      }
      const response = await router.handleRequest({ ...fhirReq, body: resolved.bundle }, repository);
      if (!isOk(response[0])) throw new TransactionFailed(response);
      const merged = response[1] && resolved.matched.size ? mergeTransactionResponse(response[1] as Bundle, resolved.matched, body.entry?.length ?? 0) : response[1];
      return (merged ? [response[0], merged] : response) as FhirResponse;
    });
  } catch (e) {
    if (e instanceof TransactionFailed) return e.response;
    throw e;
  }
}

/** One REST call as fhir-router sees it, with what the answer needs to know of the search. */
interface ParsedCall {
  method: HttpMethod;
  path: string;
  params: URLSearchParams;
  isSearch: boolean;
}

/** Method and path, with POST [type]/_search turned into the same search as GET [type]?body (FHIR R4 3.1.0.8.1). */
function parseCall(req: Request): ParsedCall {
  let method = req.method.toUpperCase() as HttpMethod;
  const full = new URL(req.url, 'http://local');
  let path = full.pathname.replace(/^\/+/, '').replace(/\/+$/, '');
  const params = full.searchParams;
  if (method === 'POST' && /^[A-Z][A-Za-z]+\/_search$/.test(path)) {
    const form = (req.body ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(form)) {
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
    }
    method = 'GET';
    path = path.slice(0, -'/_search'.length);
  }
  const isSearch = method === 'GET' && (path === '' || /^[A-Z][A-Za-z]+$/.test(path));
  return { method, path, params, isSearch };
}

/** Refuses what fhir-router would get wrong: an unknown type, a missing body, a half-specified transaction. */
function rejected(req: Request, res: Response, { method, path }: ParsedCall): boolean {
  const type = path.split('/')[0];
  if (type && !type.startsWith('$') && !isResourceType(type)) {
    sendJson(res, 404, outcome('error', 'not-found', `Unknown resource type: ${type.slice(0, 64)}`));
    return true;
  }
  const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
  if (hasBody && (req.body === undefined || req.body === null || typeof req.body !== 'object')) {
    const ct = String(req.headers['content-type'] ?? '');
    if (ct && !/json/i.test(ct)) {
      sendJson(res, 415, outcome('error', 'not-supported', `Unsupported content type ${ct.slice(0, 64)}: send application/fhir+json`));
    } else {
      sendJson(res, 400, outcome('error', 'invalid', 'A FHIR JSON resource body is required'));
    }
    return true;
  }
  // fhir-router answers a transaction whose entry lacks request.method/url with 200 and an error entry;
  // a transaction must be all or nothing, so refuse it whole.
  if (method === 'POST' && path === '' && isTransaction(req.body)) {
    const bad = (req.body.entry ?? []).findIndex((e) => !e?.request?.method || !e?.request?.url);
    if (bad >= 0) {
      sendJson(res, 400, outcome('error', 'invalid', `Bundle.entry[${bad}].request needs method and url`));
      return true;
    }
  }
  return false;
}

async function handle(req: Request, res: Response, run: (fhirReq: FhirRequest) => Promise<FhirResponse>, baseOf: (req: Request) => string): Promise<void> {
  const call = parseCall(req);
  if (rejected(req, res, call)) return;
  const { method, path, params, isSearch } = call;
  let summaryCount = false;
  if (isSearch) {
    summaryCount = params.get('_summary') === 'count';
    const requested = Number(params.get('_count') ?? DEFAULT_SEARCH_COUNT);
    const count = Number.isFinite(requested) && requested >= 0 ? Math.min(requested, DEFAULT_MAX_SEARCH_COUNT) : DEFAULT_SEARCH_COUNT;
    params.set('_count', String(summaryCount ? 0 : count));
    params.delete('_summary');
  }
  const query = params.toString();
  const fhirReq: FhirRequest = {
    method,
    url: `/${path}${query ? `?${query}` : ''}`,
    pathname: '',
    body: method === 'GET' ? undefined : (req.body as unknown),
    params: {},
    query: {},
    headers: req.headers,
    // Without this flag fhir-router runs a transaction Bundle entry by entry, like a batch.
    config: { transactions: true },
  };
  const [oo, resource] = await run(fhirReq);
  const status = getStatus(oo);
  if (!isOk(oo) || !resource) {
    sendJson(res, status, oo);
    return;
  }
  const base = baseOf(req);
  if (isSearch && resource.resourceType === 'Bundle') {
    decorateSearchset(resource, base, path, params, summaryCount);
  }
  if (resource.meta?.versionId) res.setHeader('ETag', `W/"${resource.meta.versionId}"`);
  if (resource.meta?.lastUpdated) res.setHeader('Last-Modified', new Date(resource.meta.lastUpdated).toUTCString());
  if (status === 201 && resource.id) {
    res.setHeader('Location', `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`);
  }
  sendJson(res, status, resource);
}

function decorateSearchset(bundle: Bundle, base: string, path: string, params: URLSearchParams, summaryCount: boolean): void {
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.id) entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    entry.search ??= { mode: 'match' };
  }
  if (summaryCount) {
    delete bundle.entry;
    bundle.link = [{ relation: 'self', url: linkUrl(base, path, params, undefined) }];
    return;
  }
  const count = Number(params.get('_count'));
  const offset = Number(params.get('_offset') ?? 0) || 0;
  const links: NonNullable<Bundle['link']> = [{ relation: 'self', url: linkUrl(base, path, params, offset) }];
  const shown = bundle.entry?.length ?? 0;
  const more = bundle.total !== undefined ? offset + shown < bundle.total : shown === count;
  if (count > 0 && more) links.push({ relation: 'next', url: linkUrl(base, path, params, offset + count) });
  if (offset > 0) links.push({ relation: 'previous', url: linkUrl(base, path, params, Math.max(0, offset - count)) });
  bundle.link = links;
}

function linkUrl(base: string, path: string, params: URLSearchParams, offset: number | undefined): string {
  const p = new URLSearchParams(params);
  if (offset === undefined || offset === 0) p.delete('_offset');
  else p.set('_offset', String(offset));
  const q = p.toString();
  return `${base}/${path}${q ? `?${q}` : ''}`;
}

class TransactionFailed extends Error {
  constructor(readonly response: FhirResponse) {
    super('transaction failed');
  }
}

function isTransaction(body: unknown): body is { entry?: ({ request?: { method?: string; url?: string } } | null)[] } {
  const b = body as { resourceType?: unknown; type?: unknown; entry?: unknown };
  return b?.resourceType === 'Bundle' && (b.type === 'transaction' || b.type === 'batch') && (b.entry === undefined || Array.isArray(b.entry));
}

function outcome(
  severity: 'error' | 'information',
  code: 'login' | 'forbidden' | 'too-costly' | 'not-found' | 'not-supported' | 'invalid',
  text: string,
): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, details: { text } }] };
}

function sendJson(res: Response, status: number, body: Resource | OperationOutcome): void {
  res.status(status).setHeader('Content-Type', FHIR_JSON);
  res.send(JSON.stringify(body));
}
