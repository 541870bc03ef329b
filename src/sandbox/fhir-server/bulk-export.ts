import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Resource } from '@medplum/fhirtypes';
import { getResourceTypes, parseSearchRequest } from '@medplum/core';
import type { FhirRepository } from '@medplum/fhir-router';

/**
 * FHIR Bulk Data Access 2.0 system-level export (`GET [base]/$export`) for the sandbox and tests, so the
 * population code (`vbmd cohort bulk:URL`) runs against the same in-process server as everything else.
 * Kick-off needs `Prefer: respond-async` and answers 202 + Content-Location; the status URL answers 202 once
 * (with Retry-After: 1, like a real server still working) and then the manifest; files are NDJSON; DELETE on
 * the status URL ends the job. The snapshot is taken at kick-off. Supported: `_type`, `_since`, `_typeFilter`,
 * `_outputFormat` ndjson. Not supported (400): Patient/Group-level export, `_elements`, `patient`.
 */
interface Job {
  request: string;
  transactionTime: string;
  files: Map<string, { ndjson: string; count: number }>;
  polled: boolean;
}

const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);
const MAX_JOBS = 20;

/** The handler's state: its jobs and what it was made with. */
interface Exporter {
  jobs: Map<string, Job>;
  repository: FhirRepository;
  baseOf: (req: Request) => string;
  requiresAccessToken: boolean;
}

export function bulkExportHandler(repository: FhirRepository, baseOf: (req: Request) => string, requiresAccessToken: boolean) {
  const ex: Exporter = { jobs: new Map<string, Job>(), repository, baseOf, requiresAccessToken };

  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const path = req.path.replace(/\/+$/, '');
    if (path === '/$export' && req.method === 'GET') return kickOff(ex, req, res);
    const status = /^\/\$export-status\/([0-9a-f-]{36})$/.exec(path);
    if (status) return statusOf(ex, status[1], req, res);
    const file = /^\/\$export-file\/([0-9a-f-]{36})\/([A-Za-z]+)\.ndjson$/.exec(path);
    if (file && req.method === 'GET') return sendFile(ex, file[1], file[2], res);
    if (/^\/([A-Z][A-Za-z]+\/)?([^/]+\/)?\$export$/.test(path)) {
      return problem(res, 400, 'not-supported', 'Only system-level export (GET [base]/$export) is supported by this server');
    }
    next();
  };
}

/** What a kick-off asks for, once its parameters are checked. */
interface ExportRequest {
  types: string[];
  since: string | undefined;
  /** Per type, the `_typeFilter` searches (OR-ed). */
  filters: Map<string, string[]>;
}

type Problem = [status: number, code: string, text: string];

/** The kick-off's parameters checked in order; the first one wrong is the answer. */
function parseKickOff(req: Request, runningJobs: number): ExportRequest | Problem {
  if (!/respond-async/i.test(String(req.headers.prefer ?? ''))) {
    return [400, 'invalid', 'Bulk export needs the header Prefer: respond-async'];
  }
  const q = req.query as Record<string, unknown>;
  const format = typeof q._outputFormat === 'string' ? q._outputFormat : undefined;
  if (format && !NDJSON_FORMATS.has(format)) return [400, 'not-supported', `Unsupported _outputFormat ${format.slice(0, 40)}`];
  for (const p of ['_elements', 'patient', 'includeAssociatedData']) {
    if (q[p] !== undefined) return [400, 'not-supported', `${p} is not supported by this server`];
  }
  const known = new Set<string>(getResourceTypes());
  const types = typeof q._type === 'string' && q._type ? q._type.split(',').map((t) => t.trim()) : [...known];
  const unknown = types.filter((t) => !known.has(t));
  if (unknown.length) return [400, 'invalid', `Unknown resource type in _type: ${unknown.join(', ').slice(0, 80)}`];
  const since = typeof q._since === 'string' ? q._since : undefined;
  if (since && Number.isNaN(Date.parse(since))) return [400, 'invalid', '_since must be a FHIR instant'];
  if (runningJobs >= MAX_JOBS) return [429, 'throttled', 'Too many export jobs; delete finished ones first'];

  // _typeFilter: `Type?search`, repeated or comma-separated; several for one type are OR-ed (Bulk Data 2.0).
  const rawFilters = ([] as unknown[]).concat(q._typeFilter ?? []).flatMap((v) => String(v).split(','));
  const filters = new Map<string, string[]>();
  for (const f of rawFilters) {
    const m = /^([A-Z][A-Za-z]+)\?(.+)$/.exec(f.trim());
    if (!m || !types.includes(m[1])) return [400, 'invalid', `_typeFilter ${f.slice(0, 60)} must be Type?query for a type in _type`];
    filters.set(m[1], [...(filters.get(m[1]) ?? []), m[2]]);
  }
  return { types, since, filters };
}

/** The snapshot taken at kick-off: one NDJSON file per type that has resources. */
async function snapshot(repository: FhirRepository, { types, since, filters }: ExportRequest): Promise<Job['files']> {
  const files = new Map<string, { ndjson: string; count: number }>();
  for (const type of types) {
    const byId = new Map<string, Resource>();
    for (const query of filters.get(type) ?? ['']) {
      const params = Object.fromEntries(new URLSearchParams(query));
      const search = parseSearchRequest(type, { ...params, ...(since ? { _lastUpdated: `gt${since}` } : {}) });
      for (const r of await repository.searchResources(search)) byId.set(r.id ?? JSON.stringify(r), r);
    }
    const all = [...byId.values()];
    if (all.length) files.set(type, { ndjson: all.map((r) => JSON.stringify(r)).join('\n') + '\n', count: all.length });
  }
  return files;
}

async function kickOff(ex: Exporter, req: Request, res: Response): Promise<void> {
  const parsed = parseKickOff(req, ex.jobs.size);
  if (Array.isArray(parsed)) return problem(res, ...parsed);
  const transactionTime = new Date().toISOString();
  const files = await snapshot(ex.repository, parsed);
  const id = randomUUID();
  ex.jobs.set(id, { request: `${ex.baseOf(req)}${req.url.replace(/^\/+/, '/')}`, transactionTime, files, polled: false });
  res.setHeader('Content-Location', `${ex.baseOf(req)}/$export-status/${id}`);
  res.status(202).setHeader('Content-Type', 'application/fhir+json');
  res.send(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', details: { text: 'Export started' } }] }));
}

function statusOf(ex: Exporter, id: string, req: Request, res: Response): void {
  const job = ex.jobs.get(id);
  if (!job) return problem(res, 404, 'not-found', 'No such export job');
  if (req.method === 'DELETE') {
    ex.jobs.delete(id);
    res.status(202).end();
    return;
  }
  if (req.method !== 'GET') return problem(res, 405, 'not-supported', 'GET or DELETE');
  if (!job.polled) {
    job.polled = true;
    res.setHeader('Retry-After', '1');
    res.setHeader('X-Progress', 'exporting');
    res.status(202).end();
    return;
  }
  const base = ex.baseOf(req);
  res.status(200).json({
    transactionTime: job.transactionTime,
    request: job.request,
    requiresAccessToken: ex.requiresAccessToken,
    output: [...job.files.entries()].map(([type, f]) => ({ type, url: `${base}/$export-file/${id}/${type}.ndjson`, count: f.count })),
    error: [],
  });
}

function sendFile(ex: Exporter, id: string, type: string, res: Response): void {
  const f = ex.jobs.get(id)?.files.get(type);
  if (!f) return problem(res, 404, 'not-found', 'No such export file');
  res.status(200).setHeader('Content-Type', 'application/fhir+ndjson');
  res.send(f.ndjson);
}

function problem(res: Response, status: number, code: string, text: string): void {
  res.status(status).setHeader('Content-Type', 'application/fhir+json');
  res.send(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] }));
}
