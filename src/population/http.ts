import { once } from 'node:events';
import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import { z } from 'zod';
import { isVbmdError, userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { COHORT_CONTENT_TYPES, cohortHistogramSvg, cohortOutput, flattenRow } from './output/index.js';
import { parseCohortQuery, runCohort } from './query.js';
import type { ResourceSource } from './sources/types.js';
import type { TherapyMatcher } from './therapy-value-set.js';

export interface CohortRouterOptions {
  /** Where resources come from: fixed by the server (never a query parameter: that would let a caller
   * point the service at any URL or folder). A function is called per request (e.g. fresh credentials). */
  source: ResourceSource | (() => ResourceSource);
  /** Decides whether the caller may see patient-level population data. Required on purpose: the answer
   * lists patient ids, so mounting the router is an explicit access decision. */
  authorize: (req: Request) => boolean | Promise<boolean>;
  matcher?: TherapyMatcher;
  /** Concurrent cohort runs allowed (each reads the whole source); extra requests get 503 + Retry-After. */
  maxConcurrent?: number;
}

const boolParam = z.enum(['true', 'false', '1', '0', '']).transform((v) => v === 'true' || v === '1' || v === '');
const numParam = z.string().regex(/^\d+(\.\d+)?$/, 'must be a number').transform(Number);

/** Query parameters mirror the CLI flags: category, untreated, declining, since, until, asOf, format
 * (json | csv | ndjson | group | svg), limit (rows in the json answer). */
const cohortParams = z
  .object({
    category: z.string().optional(),
    untreated: boolParam.optional(),
    declining: numParam.optional(),
    since: z.string().optional(),
    until: z.string().optional(),
    asOf: z.string().optional(),
    format: z.enum(['json', 'csv', 'ndjson', 'group', 'svg']).default('json'),
    limit: z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).optional(),
  })
  .strict();

/**
 * `GET /` (mount at /api/cohort): the cohort as JSON `{summary, rows}` (flat rows like the CSV), or CSV,
 * NDJSON, a FHIR Group, or the SVG histogram. Bad parameters are a 400 with one sentence; source failures a
 * 502 naming the server. Each request streams the whole source once.
 */
export function createCohortRouter(options: CohortRouterOptions): Router {
  const router = express.Router();
  const max = options.maxConcurrent ?? 1;
  let running = 0;

  router.get('/', (req: Request, res: Response, next: NextFunction) => {
    void (async () => {
      if (!(await options.authorize(req))) {
        res.status(401).setHeader('WWW-Authenticate', 'Bearer').json({ error: 'Not authorized to read population data.' });
        return;
      }
      const params = cohortParams.safeParse(req.query);
      if (!params.success) {
        const why = params.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ');
        res.status(400).json({ error: `Invalid cohort query (${why}).` });
        return;
      }
      const p = params.data;
      let query;
      try {
        query = parseCohortQuery({
          ...(p.category !== undefined ? { category: p.category } : {}),
          untreated: p.untreated ?? false,
          ...(p.declining !== undefined ? { decliningPctPerYear: p.declining } : {}),
          ...(p.since !== undefined ? { since: p.since } : {}),
          ...(p.until !== undefined ? { until: p.until } : {}),
          ...(p.asOf !== undefined ? { asOf: p.asOf } : {}),
        });
      } catch (e) {
        res.status(400).json({ error: userMessage(e) });
        return;
      }
      if (running >= max) {
        res.status(503).setHeader('Retry-After', '10').json({ error: 'A cohort query is already running; try again shortly.' });
        return;
      }
      running++;
      const controller = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) controller.abort();
      });
      try {
        const source = typeof options.source === 'function' ? options.source() : options.source;
        const result = await runCohort(source, query, { matcher: options.matcher, signal: controller.signal });
        if (p.format === 'json') {
          const rows = p.limit !== undefined ? result.rows.slice(0, p.limit) : result.rows;
          res.status(200).json({ summary: result.summary, rows: rows.map(flattenRow) });
          return;
        }
        if (p.format === 'svg') {
          res.status(200).type('image/svg+xml').send(cohortHistogramSvg(result.rows, result.summary));
          return;
        }
        res.status(200).setHeader('content-type', COHORT_CONTENT_TYPES[p.format]);
        for (const chunk of cohortOutput(result, p.format)) {
          if (!res.write(chunk)) await once(res, 'drain');
        }
        res.end();
      } catch (e) {
        if (controller.signal.aborted) return;
        if (isVbmdError(e)) {
          const status = e.code === 'bad-input' ? 400 : 502;
          log.warn({ code: e.code, status }, 'cohort query failed');
          if (!res.headersSent) res.status(status).json({ error: e.message });
          else res.destroy();
          return;
        }
        next(e);
      } finally {
        running--;
      }
    })().catch(next);
  });
  return router;
}
