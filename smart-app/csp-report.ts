import express from 'express';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { log } from '../src/util/log.js';

/**
 * The browser's reports of what the app's Content-Security-Policy blocked (CSP `report-uri`). A blocked frame
 * never shows the app, so its error view cannot say why; the service log does, with the setting to change.
 * Anyone can post a report: the body is validated, nothing from it but a directive and an origin is logged,
 * and one line per directive and origin a minute at most, so it cannot flood the log.
 */
export interface CspReport {
  directive: string;
  /** Origin of the blocked URL; for frame-ancestors the browser names the app's own page, not the embedder. */
  blockedOrigin: string;
}

const reportSchema = z.object({
  'csp-report': z.object({
    'effective-directive': z.string().max(64).optional(),
    'violated-directive': z.string().max(2048).optional(),
    'blocked-uri': z.string().max(4096).optional(),
  }),
});

export function parseCspReport(body: unknown): CspReport | null {
  const r = reportSchema.safeParse(body);
  if (!r.success) return null;
  const c = r.data['csp-report'];
  const directive = c['effective-directive'] ?? c['violated-directive']?.split(' ')[0];
  if (!directive || !/^[a-z-]{1,64}$/.test(directive)) return null;
  let blockedOrigin = 'unknown';
  try {
    blockedOrigin = c['blocked-uri'] ? new URL(c['blocked-uri']).origin : 'unknown';
  } catch {
    blockedOrigin = /^[a-z-]{1,32}$/.test(c['blocked-uri'] ?? '') ? (c['blocked-uri'] as string) : 'unknown';
  }
  return { directive, blockedOrigin };
}

/** What to tell whoever runs the service. */
export function cspAdvice(r: CspReport): string {
  if (r.directive === 'frame-ancestors') return "The SMART app refused to be shown in an EHR's frame: add the EHR's web origin to SMART_FRAME_ANCESTORS.";
  if (r.directive === 'connect-src') return `The SMART app was blocked from calling ${r.blockedOrigin}: add it to SMART_CONNECT_ORIGINS.`;
  return `The SMART app's Content-Security-Policy blocked ${r.directive} ${r.blockedOrigin}.`;
}

function defaultReport(): (r: CspReport) => void {
  const lastMs = new Map<string, number>();
  return (r) => {
    const key = `${r.directive} ${r.blockedOrigin}`;
    const now = Date.now();
    if ((lastMs.get(key) ?? 0) > now - 60_000) return;
    if (lastMs.size > 200) lastMs.clear();
    lastMs.set(key, now);
    log.warn({ directive: r.directive, blocked: r.blockedOrigin }, cspAdvice(r));
  };
}

/** POST handler for the report-uri. */
export function cspReportHandler(onReport: (r: CspReport) => void = defaultReport()): RequestHandler[] {
  return [
    express.json({ type: ['application/csp-report', 'application/json'], limit: '16kb' }),
    (req, res) => {
      const r = parseCspReport(req.body);
      if (r) onReport(r);
      res.status(204).end();
    },
  ];
}
