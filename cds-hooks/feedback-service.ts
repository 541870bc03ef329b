import type { Request, RequestHandler } from 'express';
import type { VerifiedClient } from './client-auth.js';
import type { CdsHooksDeps } from './deps.js';
import { CDS_SERVICES } from './discovery.js';
import { checkFeedback, DEFAULT_OVERRIDE_QUIET_MS } from './feedback-check.js';
import { badRequest } from './hook-call.js';
import { describeZodError, feedbackRequest } from './hook-request.js';

/**
 * The feedback service (`POST /cds-services/{id}/feedback`, CDS Hooks 2.0 "Feedback"): accepts only cards (and
 * suggestions) this service issued (feedback-check.ts); an override with a reason quiets the patient's card.
 * Runs after the client JWT check and the JSON body parser.
 */
export function feedbackHandler(deps: CdsHooksDeps): RequestHandler {
  return (req, res, next) => {
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
  };
}

/** `GET /api/cds/feedback-counts` for operators: feedback counted per service and outcome. */
export function feedbackCountsHandler(deps: CdsHooksDeps, authorize: (req: Request) => Promise<boolean>): RequestHandler {
  return (req, res, next) => {
    authorize(req)
      .then(async (ok) => {
        if (!ok) return void res.status(401).end();
        res.json(await deps.feedback.counts());
      })
      .catch(next);
  };
}
