import { createServer } from 'node:http';
import { resolve } from 'node:path';
import express from 'express';
import type { Request, Response, Router } from 'express';
import type { ClientJwtVerifier, VerifiedClient } from '../../cds-hooks/client-auth.js';
import { CDS_SERVICES } from '../../cds-hooks/discovery.js';
import type { EnvConfig } from '../config.js';
import { hookAccessEvent } from '../audit/audit-event.js';
import type { AuditParty } from '../audit/audit-event.js';
import { createAuditTrail } from '../audit/audit-trail.js';
import type { AuditSink } from '../audit/audit-trail.js';
import { readProgress } from '../backfill/progress.js';
import { backfillLimits, readLimits, updateLimits } from '../backfill/limits.js';
import type { FhirClient } from '../fhir/client.js';
import type { ApiAuthorizer } from '../jobs/http-api.js';
import { JOB_STATES } from '../jobs/queue.js';
import type { ServiceStores } from '../jobs/stores.js';
import { backfillStudies, backfillUpdated, hookSeconds, jobsByState, jwtRejections, metricsText, onScrape } from '../metrics/metrics.js';
import type { MetricsJson } from '../metrics/metrics.js';
import { jwtRejectionReason } from '../metrics/jwt-rejection-reason.js';
import { userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { acceptCorrelationId, hashForLog, withLogContext } from '../util/log-context.js';

/**
 * The operator side of `vbmd start`, kept out of service.ts: /metrics (Prometheus text, the supervised
 * worker's metrics added), the backfill limits API, and per CDS hook call its correlation id, latency
 * metric and AuditEvent; plus the JWT rejection counter and the audit sink. Each route is protected like
 * the other operator routes (the API bearer tokens).
 */
export function auditSinkFromConfig(cfg: EnvConfig, fhir: FhirClient): AuditSink {
  const localFile = resolve(cfg.AUDIT_LOG_FILE ?? resolve(cfg.VBMD_DATA_DIR, 'audit', 'audit-events.ndjson'));
  return createAuditTrail({ ...(cfg.AUDIT_TO_FHIR ? { fhir } : {}), localFile });
}

/** Counts rejections by reason (bounded labels); the verdict is unchanged. */
export function countingVerifier(verifier: ClientJwtVerifier): ClientJwtVerifier {
  return {
    verify: async (authorization, audience) => {
      const r = await verifier.verify(authorization, audience);
      if (!r.ok) jwtRejections.inc({ reason: jwtRejectionReason(r.reason) });
      return r;
    },
  };
}

/** Queue counts and backfill progress, read from the shared store when /metrics is scraped. */
export function registerStoreMetrics(stores: ServiceStores): () => void {
  const offQueue = onScrape(async () => {
    const counts = await stores.queue.counts();
    for (const state of JOB_STATES) jobsByState.set({ queue: stores.kind === 'redis' ? 'bullmq' : 'embedded', state }, counts[state]);
  });
  const offBackfill = onScrape(async () => {
    const p = await readProgress(stores.settings);
    if (!p) return;
    for (const [state, n] of Object.entries(p.counts)) backfillStudies.set({ state }, n);
    backfillUpdated.set(Date.parse(p.updatedAt) / 1000);
  });
  return () => {
    offQueue();
    offBackfill();
  };
}

export interface OpsRouterOptions {
  authorize: ApiAuthorizer;
  stores: ServiceStores;
  /** The supervised worker's metrics (IPC), added to this process's. */
  workerMetrics?: () => Promise<MetricsJson[]>;
  audit?: { sink: AuditSink; service: AuditParty };
}

const SERVICE_IDS: ReadonlySet<string> = new Set(CDS_SERVICES.map((s) => s.id));

function guard(authorize: ApiAuthorizer, handler: (req: Request, res: Response) => Promise<void>) {
  return (req: Request, res: Response): void => {
    authorize(req)
      .then(async (ok) => (ok ? handler(req, res) : void res.status(401).end()))
      .catch((e: unknown) => {
        log.error({ err: userMessage(e) }, 'operator route failed');
        if (!res.headersSent) res.status(503).json({ error: 'unavailable', message: userMessage(e) });
      });
  };
}

export function createOpsRouter(o: OpsRouterOptions): Router {
  const router = express.Router();
  router.get(
    '/metrics',
    guard(o.authorize, async (_req, res) => {
      const others = o.workerMetrics ? await o.workerMetrics().catch(() => []) : [];
      const { contentType, body } = await metricsText(others);
      res.setHeader('Cache-Control', 'no-store');
      res.type(contentType).send(body);
    }),
  );
  router.get('/api/backfill/limits', guard(o.authorize, async (_req, res) => void res.json(await readLimits(o.stores.settings))));
  router.put(
    '/api/backfill/limits',
    express.json({ limit: '4kb', type: () => true }),
    guard(o.authorize, async (req, res) => {
      const change = backfillLimits.partial().safeParse(req.body);
      if (!change.success) {
        res.status(400).json({ error: 'bad-request', message: `Invalid limits: ${change.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}.` });
        return;
      }
      res.json(await updateLimits(o.stores.settings, change.data));
    }),
  );
  router.post('/cds-services/:id', (req, res, next) => hookObserved(o, req, res, next));
  return router;
}

/** One hook call: its correlation id (kept by a watch it creates), latency, a log line, and its AuditEvent. */
function hookObserved(o: OpsRouterOptions, req: Request, res: Response, next: () => void): void {
  const service = SERVICE_IDS.has(String(req.params.id)) ? String(req.params.id) : 'unknown';
  const correlationId = acceptCorrelationId(req.get('x-correlation-id'));
  const t0 = performance.now();
  res.setHeader('X-Correlation-Id', correlationId);
  res.once('finish', () => {
    const seconds = (performance.now() - t0) / 1000;
    hookSeconds.observe({ service, status: String(res.statusCode) }, seconds);
    const patientId = (req.body as { context?: { patientId?: unknown } } | undefined)?.context?.patientId;
    const client = res.locals.cdsClient as VerifiedClient | undefined;
    log.info({ correlationId, stage: 'hook', service, status: res.statusCode, ms: Math.round(seconds * 1000), ...(typeof patientId === 'string' ? { patient: hashForLog(patientId) } : {}) }, 'CDS hook answered');
    if (!o.audit || res.statusCode !== 200 || typeof patientId !== 'string' || !client) return;
    const fhirServer = (req.body as { fhirServer?: unknown }).fhirServer;
    const event = hookAccessEvent({
      patient: `Patient/${patientId}`,
      hook: service,
      client: { name: client.iss, url: client.iss },
      ...(typeof fhirServer === 'string' ? { fhirServer: { name: 'EHR FHIR server', url: fhirServer } } : {}),
      service: o.audit.service,
      correlationId,
    });
    void o.audit.sink.record(event);
  });
  withLogContext({ correlationId, stage: 'hook' }, next);
}

/** A `--worker-only` process's own /metrics (METRICS_PORT), for Prometheus to scrape each worker. */
export async function startWorkerMetricsServer(port: number, host: string, authorize: ApiAuthorizer): Promise<{ close(): Promise<void> }> {
  const app = express();
  app.disable('x-powered-by');
  app.get(
    '/metrics',
    guard(authorize, async (_req, res) => {
      const { contentType, body } = await metricsText();
      res.type(contentType).send(body);
    }),
  );
  app.use((_req, res) => void res.status(404).end());
  const server = createServer(app);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  return { close: () => new Promise<void>((ok) => server.close(() => ok())) };
}
