import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import type { z } from 'zod';
import type { NewWatch } from '../src/jobs/watches.js';
import { log } from '../src/util/log.js';
import type { CdsResponse } from './card-types.js';
import { calledUrl, requireClientJwt } from './client-auth.js';
import type { ClientJwtVerifier, VerifiedClient } from './client-auth.js';
import type { CtValueSet } from './ct-value-set.js';
import { CDS_SERVICES, SERVICE_IDS, discoveryDocument } from './discovery.js';
import type { FeedbackStore } from './feedback-store.js';
import {
  describeZodError,
  feedbackRequest,
  orderSelectRequest,
  orderSignRequest,
  patientViewRequest,
  withFhirServerRule,
} from './hook-request.js';
import type { TherapyMatcher } from '../src/population/therapy-value-set.js';
import { checkFeedback, DEFAULT_OVERRIDE_QUIET_MS, issuedCardsOf } from './feedback-check.js';
import { matchCtOrders, orderCards } from './order-card.js';
import { patientViewHook } from './patient-view-hook.js';
import { searchResources } from './prefetch.js';
import { readVbmdResults } from './vbmd-results.js';

/**
 * The CDS Hooks 2.0 service as an express Router, mounted at the root (`/cds-services...`). Order of checks:
 * CORS preflight (no credentials by definition), then the client JWT on every request (bare 401), then the
 * body (400 with a zod message), then the service logic. The hook never waits for imaging or a queue: a
 * watch is one local insert.
 */
export interface CdsHooksDeps {
  verifier: ClientJwtVerifier;
  /** The service's public base URL as clients call it (JWT `aud` and card links; never the Host header). */
  publicBaseUrl: string;
  valueSet: CtValueSet;
  declinePctPerYear: number;
  /** Default `${base}/smart/launch.html`. */
  smartLaunchUrl?: string;
  watches: { upsert(w: NewWatch): Promise<unknown> };
  watchTtlMs: number;
  feedback: FeedbackStore;
  fhirTimeoutMs?: number;
  /** Per trusted client (iss): the FHIR base URLs it may name as fhirServer (CDS_CLIENTS fhir_servers). */
  clientFhirServers?: ReadonlyMap<string, readonly string[]>;
  /** Allow fetching from an http (non-TLS, non-loopback) fhirServer with the client's token. */
  allowInsecureHttp?: boolean;
  /** Who may read `GET /api/cds/feedback-counts` (operators); the route is absent without it. */
  opsAuthorize?: (req: Request) => Promise<boolean>;
  /** How long an override with a reason quiets that patient's patient-view card (CDS_OVERRIDE_QUIET_DAYS). */
  overrideQuietMs?: number;
  /** Bone-protective therapy value set (the cohort's, COHORT_THERAPY_VALUE_SET_FILE); default built in. */
  therapyMatcher?: TherapyMatcher;
}

const hookSchemas = {
  [SERVICE_IDS.orderSelect]: withFhirServerRule(orderSelectRequest),
  [SERVICE_IDS.orderSign]: withFhirServerRule(orderSignRequest),
  [SERVICE_IDS.patientView]: withFhirServerRule(patientViewRequest),
} as const;

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

function badRequest(res: Response, message: string): void {
  res.status(400).json({ error: 'bad-request', message });
}

export function createCdsHooksRouter(deps: CdsHooksDeps): Router {
  const router = express.Router();
  const auth = requireClientJwt(deps.verifier, deps.publicBaseUrl);
  const json = express.json({ limit: '5mb', type: () => true });
  const smartUrl = (req: Request): string =>
    deps.smartLaunchUrl ?? `${calledUrl(req, deps.publicBaseUrl).replace(/\/cds-services(\/.*)?$/, '')}/smart/launch.html`;

  if (deps.opsAuthorize) {
    const ops = deps.opsAuthorize;
    router.get('/api/cds/feedback-counts', (req, res, next) => {
      ops(req)
        .then(async (ok) => {
          if (!ok) return void res.status(401).end();
          res.json(await deps.feedback.counts());
        })
        .catch(next);
    });
  }

  router.use('/cds-services', cdsCors);
  router.get('/cds-services', auth, (_req, res) => {
    res.json(discoveryDocument());
  });

  router.post('/cds-services/:id/feedback', auth, json, (req, res, next) => {
    const id = String(req.params.id);
    if (!CDS_SERVICES.some((s) => s.id === id)) {
      res.status(404).json({ error: 'not-found', message: `No CDS service with id ${id}.` });
      return;
    }
    const parsed = feedbackRequest.safeParse(req.body);
    if (!parsed.success) return badRequest(res, `Invalid feedback: ${describeZodError(parsed.error)}.`);
    const client = res.locals.cdsClient as VerifiedClient;
    // Only cards (and suggestions) this service issued; an override with a reason quiets the patient's card.
    checkFeedback(deps.feedback, id, parsed.data.feedback, Date.now(), deps.overrideQuietMs ?? DEFAULT_OVERRIDE_QUIET_MS)
      .then(async (checked) => {
        if (!checked.ok) return badRequest(res, `Invalid feedback: ${checked.message}.`);
        await deps.feedback.record(id, client.iss, parsed.data.feedback);
        for (const q of checked.quiet) await deps.feedback.quiet(q);
        res.status(200).json({});
      })
      .catch((e: unknown) => next(e));
  });

  router.post('/cds-services/:id', auth, json, (req, res, next) => {
    const id = String(req.params.id) as keyof typeof hookSchemas;
    const schema = hookSchemas[id];
    if (!schema) {
      res.status(404).json({ error: 'not-found', message: `No CDS service with id ${String(id)}.` });
      return;
    }
    const parsed = (schema as z.ZodType).safeParse(req.body);
    if (!parsed.success) {
      return badRequest(res, `Invalid CDS Hooks request for ${id}: ${describeZodError(parsed.error as z.ZodError)}.`);
    }
    handleHook(id, parsed.data as HookBody, req, res.locals.cdsClient as VerifiedClient).then(
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
  });

  type HookBody = {
    hook: string;
    hookInstance: string;
    fhirServer?: string;
    fhirAuthorization?: z.infer<typeof patientViewRequest>['fhirAuthorization'];
    context: Record<string, unknown> & { patientId: string; draftOrders?: unknown; selections?: string[] };
    prefetch?: Record<string, unknown>;
  };

  async function handleHook(id: keyof typeof hookSchemas, body: HookBody, req: Request, client: VerifiedClient): Promise<CdsResponse | 'precondition-failed'> {
    const def = CDS_SERVICES.find((s) => s.id === id)!;
    const listed = deps.clientFhirServers?.get(client.iss);
    const fetchOpts = {
      ...(deps.fhirTimeoutMs ? { timeoutMs: deps.fhirTimeoutMs } : {}),
      allowInsecureHttp: deps.allowInsecureHttp === true,
      ...(listed ? { allowedFhirServers: listed } : {}),
    };
    if (id === SERVICE_IDS.patientView) {
      return patientViewHook((key) => searchResources(body, key, def.prefetch[key]!, fetchOpts), {
        serviceId: id,
        patientId: body.context.patientId,
        smartLaunchUrl: smartUrl(req),
        declinePctPerYear: deps.declinePctPerYear,
        feedback: deps.feedback,
        ...(deps.therapyMatcher ? { therapyMatcher: deps.therapyMatcher } : {}),
      });
    }
    const selections = id === SERVICE_IDS.orderSelect ? body.context.selections : undefined;
    const orders = matchCtOrders(body.context.draftOrders, deps.valueSet, selections);
    if (orders.length === 0) return { cards: [] };
    // The last result only enriches the card; when it cannot be had the card says so (no 412: the card's
    // message, that the scan will be measured, does not depend on it).
    const observations = await searchResources(body, 'vbmdObservations', def.prefetch.vbmdObservations!, fetchOpts);
    const latest = observations === undefined ? undefined : (readVbmdResults(observations)[0] ?? null);
    // Only a signed order is a promise that the scan will happen: order-select fires while the clinician is
    // still choosing, so it shows the card but leaves no watch behind.
    for (const o of id === SERVICE_IDS.orderSign ? orders : []) {
      try {
        await deps.watches.upsert({
          patientId: body.context.patientId,
          ...(o.serviceRequestId ? { serviceRequestId: o.serviceRequestId } : {}),
          ...(o.accessionNumber ? { accessionNumber: o.accessionNumber } : {}),
          ...(o.accessionSystem ? { accessionSystem: o.accessionSystem } : {}),
          ...(body.fhirServer ? { fhirServer: body.fhirServer } : {}),
          hook: body.hook,
          ttlMs: deps.watchTtlMs,
        });
      } catch (e) {
        // The card is still right; the study can still arrive through the analyze API or a notification.
        log.error({ err: (e as Error).message, hookInstance: body.hookInstance }, 'could not record the study watch');
      }
    }
    const cards = orderCards(orders, latest, { smartLaunchUrl: smartUrl(req) });
    await deps.feedback.recordIssued(issuedCardsOf(cards, id, body.context.patientId, latest?.observationId ?? null, Date.now()));
    return { cards };
  }

  // Malformed JSON and other body errors: a JSON 400, never an HTML page or a stack.
  router.use('/cds-services', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; status?: number };
    if (e?.type === 'entity.parse.failed') return badRequest(res, 'The request body is not valid JSON.');
    if (e?.type === 'entity.too.large') {
      res.status(413).json({ error: 'too-large', message: 'The request body is larger than 5 MB.' });
      return;
    }
    log.error({ err: (err as Error)?.message }, 'CDS service failed');
    if (res.headersSent) return next(err);
    res.status(500).json({ error: 'internal', message: 'The CDS service failed; see the service log.' });
  });

  return router;
}
