import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import type { z } from 'zod';
import { log } from '../src/util/log.js';
import type { CdsResponse } from './card-types.js';
import { requireClientJwt } from './client-auth.js';
import type { VerifiedClient } from './client-auth.js';
import type { CdsHooksDeps } from './deps.js';
import { SERVICE_IDS, discoveryDocument } from './discovery.js';
import type { ServiceId } from './discovery.js';
import { feedbackCountsHandler, feedbackHandler } from './feedback-service.js';
import { badRequest, hookCall } from './hook-call.js';
import type { HookBody, HookCall } from './hook-call.js';
import {
  describeZodError,
  orderSelectRequest,
  orderSignRequest,
  patientViewRequest,
  withFhirServerRule,
} from './hook-request.js';
import { orderService } from './order-service.js';
import { patientViewService } from './patient-view-service.js';

export type { CdsHooksDeps } from './deps.js';

/**
 * The CDS Hooks 2.0 service as an express Router, mounted at the root (`/cds-services...`). Order of checks:
 * CORS preflight (no credentials by definition), then the client JWT on every request (bare 401), then the
 * body (400 with a zod message), then the service logic. The router only wires: discovery (discovery.ts),
 * the order-select/order-sign service (order-service.ts), patient-view (patient-view-service.ts) and
 * feedback (feedback-service.ts).
 */
type HookService = (deps: CdsHooksDeps, body: HookBody, call: HookCall) => Promise<CdsResponse | 'precondition-failed'>;

const hookServices: Record<string, { schema: z.ZodType; run: HookService } | undefined> = {
  [SERVICE_IDS.orderSelect]: { schema: withFhirServerRule(orderSelectRequest), run: orderService },
  [SERVICE_IDS.orderSign]: { schema: withFhirServerRule(orderSignRequest), run: orderService },
  [SERVICE_IDS.patientView]: { schema: withFhirServerRule(patientViewRequest), run: patientViewService },
};

/** CORS for browser-based CDS clients (the reference services' headers; CDS Hooks defers to OWASP). */
export function cdsCors(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization');
  res.setHeader('Access-Control-Max-Age', '600');
  if (req.method === 'OPTIONS') {
    res.status(204).end();
    return;
  }
  next();
}

/** `POST /cds-services/{id}`: the body checked against that service's schema, then the service. */
function hookHandler(deps: CdsHooksDeps): express.RequestHandler {
  return (req, res, next) => {
    const id = String(req.params.id);
    const service = Object.hasOwn(hookServices, id) ? hookServices[id] : undefined;
    if (!service) {
      res.status(404).json({ error: 'not-found', message: `No CDS service with id ${id}.` });
      return;
    }
    const parsed = service.schema.safeParse(req.body);
    if (!parsed.success) {
      return badRequest(res, `Invalid CDS Hooks request for ${id}: ${describeZodError(parsed.error)}.`);
    }
    const call = hookCall(deps, id as ServiceId, req, res.locals.cdsClient as VerifiedClient);
    service.run(deps, parsed.data as HookBody, call).then(
      (out) => {
        if (out === 'precondition-failed') {
          res.status(412).json({
            error: 'precondition-failed',
            message: 'The vBMD Observations were neither prefetched nor reachable: send the "vbmdObservations" prefetch or fhirServer + fhirAuthorization.',
          });
          return;
        }
        res.json(out);
      },
      (e: unknown) => next(e),
    );
  };
}

/** Malformed JSON and other body errors: a JSON 400, never an HTML page or a stack. */
function cdsErrorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number };
  if (e?.type === 'entity.parse.failed') return badRequest(res, 'The request body is not valid JSON.');
  if (e?.type === 'entity.too.large') {
    res.status(413).json({ error: 'too-large', message: 'The request body is larger than 5 MB.' });
    return;
  }
  log.error({ err: (err as Error)?.message }, 'CDS service failed');
  if (res.headersSent) return next(err);
  res.status(500).json({ error: 'internal', message: 'The CDS service failed; see the service log.' });
}

export function createCdsHooksRouter(deps: CdsHooksDeps): Router {
  const router = express.Router();
  const auth = requireClientJwt(deps.verifier, deps.publicBaseUrl);
  const json = express.json({ limit: '5mb', type: () => true });
  if (deps.opsAuthorize) router.get('/api/cds/feedback-counts', feedbackCountsHandler(deps, deps.opsAuthorize));
  router.use('/cds-services', cdsCors);
  router.get('/cds-services', auth, (_req, res) => {
    res.json(discoveryDocument());
  });
  router.post('/cds-services/:id/feedback', auth, json, feedbackHandler(deps));
  router.post('/cds-services/:id', auth, json, hookHandler(deps));
  router.use('/cds-services', cdsErrorHandler);
  return router;
}
