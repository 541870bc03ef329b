import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import type { Router } from 'express';
import { VbmdError } from '../src/util/errors.js';
import { SMART_APP_DIST } from './build.js';
import { cspReportHandler } from './csp-report.js';
import type { CspReport } from './csp-report.js';

export interface SmartAppRouterOptions {
  /** Built files (smart-app/dist by default; `npm run build:smart` makes them). */
  distDir?: string;
  /** Origins the app may call besides its own: the production EHR's FHIR server (`iss`) and, when on another
   * host, its authorization server (fhirclient POSTs the token request from the browser). */
  fhirOrigins?: string[];
  /** Who may frame the app (the EHR's web origin); default this origin and the FHIR origins. `vbmd start`
   * can take it from SMART_FRAME_ANCESTORS (see frameAncestorsFromConfig). */
  frameAncestors?: string[];
  /** What the browser app needs to know before it can launch (served as /smart/settings.json). */
  launch?: AppLaunchSettings;
  /** What the browser reports its CSP blocked (default: one log line per directive and origin a minute). */
  onCspReport?: (r: CspReport) => void;
}

/** settings.json: read by launch.html and the app from their own origin (the CSP allows nothing else first). */
export interface AppLaunchSettings {
  /** SMART_CLIENT_ID. */
  clientId: string;
  /** The sandbox: a standalone launch without `iss` goes to this service's own FHIR server (`/fhir`);
   * outside the sandbox there is no FHIR server here, and the launch page says to add `iss`. */
  sandbox: boolean;
}

export const DEFAULT_LAUNCH_SETTINGS: AppLaunchSettings = { clientId: 'vbmd-smart-app', sandbox: true };

/**
 * Serves the built SMART app (mount at `/smart`): `/smart/launch.html` is the launch_uri and
 * `/smart/index.html` the redirect_uri. The Content-Security-Policy holds the app to its own origin and
 * the FHIR server(s): no script, style, image or request can leave them.
 */
/** SMART_FRAME_ANCESTORS as a list for `frameAncestors` (undefined when unset). */
export function frameAncestorsFromConfig(value: string | undefined): string[] | undefined {
  if (!value) return undefined;
  return ["'self'", ...value.split(/[\s,]+/).filter(Boolean)];
}

/** `fhirOrigins` for production: FHIR_BASE_URL's origin plus SMART_CONNECT_ORIGINS. */
export function connectOriginsFromConfig(fhirBaseUrl: string | undefined, extra: string | undefined): string[] {
  const list = [...(fhirBaseUrl ? [new URL(fhirBaseUrl).origin] : []), ...(extra ?? '').split(/[\s,]+/).filter(Boolean)];
  return [...new Set(list)];
}

export function createSmartAppRouter(opts: SmartAppRouterOptions = {}): Router {
  const dist = opts.distDir ?? SMART_APP_DIST;
  if (!existsSync(join(dist, 'index.html'))) {
    throw new VbmdError('config', `The SMART app is not built (${dist}/index.html missing): run  npm run build:smart`);
  }
  const connect = ["'self'", ...(opts.fhirOrigins ?? [])].join(' ');
  // An EHR embeds the app in an iframe; a CSP that forbade its origin would show a blank frame.
  const frame = (opts.frameAncestors ?? ["'self'", ...(opts.fhirOrigins ?? [])]).join(' ');
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connect}`,
    "object-src 'none'",
    "base-uri 'none'",
    `frame-ancestors ${frame}`,
    // Relative to the page (/smart/...): a blocked frame cannot tell its user why, the log can.
    'report-uri csp-report',
  ].join('; ');
  const router = express.Router();
  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });
  const settings = JSON.stringify(opts.launch ?? DEFAULT_LAUNCH_SETTINGS);
  router.get('/settings.json', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('application/json').send(settings);
  });
  router.post('/csp-report', ...cspReportHandler(opts.onCspReport));
  router.use(express.static(dist, { index: 'index.html', maxAge: 0, setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache') }));
  return router;
}
