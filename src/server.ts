import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Express, NextFunction, Request, Response, Router } from 'express';
import { createCdsHooksRouter } from '../cds-hooks/router.js';
import type { CdsHooksDeps } from '../cds-hooks/router.js';
import { createStudyApiRouter } from './jobs/http-api.js';
import type { ApiAuthorizer } from './jobs/http-api.js';
import type { AnalysisJobData } from './jobs/analysis-job.js';
import type { JobQueue } from './jobs/queue.js';
import { VbmdError, userMessage } from './util/errors.js';
import { log } from './util/log.js';

/**
 * The HTTP service: CDS Hooks at /cds-services, the study API at /api/studies and /api/jobs, and whatever
 * other parts the caller mounts (the FHIR server at /fhir and the sandbox SMART authorization server in the
 * sandbox, the SMART app at /smart, the cohort API at /api/cohort), plus /healthz (the process runs) and
 * /readyz (FHIR, DICOM source and queue answer). Building the parts is `vbmd start`'s job (src/cli/start.ts);
 * this file only puts them together.
 */
export interface ReadinessCheck {
  name: string;
  /** Rejects when not ready; may resolve with a warning that does not take the service out of rotation. */
  check: () => Promise<void | string | undefined>;
}

export interface ServiceAppParts {
  cds: CdsHooksDeps;
  queue: JobQueue<AnalysisJobData>;
  apiAuthorize: ApiAuthorizer;
  publicBaseUrl?: string;
  /** Mounted before everything else, at their own paths (the sandbox SMART server serves several). */
  rootRouters?: Router[];
  /** Mounted at a path: `/fhir`, `/smart`, `/api/cohort`. */
  mounts?: { path: string; handler: Router | Express }[];
  readiness: ReadinessCheck[];
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_r, reject) => (t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

/** Cards, job records and readiness carry PHI or internal detail: never kept by a browser or a proxy. */
function noStore(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Cache-Control', 'no-store');
  next();
}

export function createServiceApp(parts: ServiceAppParts): Express {
  const app = express();
  app.disable('x-powered-by');
  // No response is content-sniffed into something executable (a JSON card rendered as HTML).
  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });
  app.use(['/cds-services', '/api', '/readyz', '/healthz'], noStore);
  // Behind a proxy, PUBLIC_BASE_URL says what clients called; req.protocol is not trusted for it.
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (req, res) => {
    // Failure reasons name internal servers and URLs: only an authorized caller (API token) sees them.
    const detailed = parts.apiAuthorize(req).catch(() => false);
    void Promise.all(
      parts.readiness.map(async (r) => {
        try {
          const warning = await withTimeout(r.check(), 3000);
          return [r.name, { ok: true, ...(typeof warning === 'string' ? { warning } : {}) }] as const;
        } catch (e) {
          return [r.name, { ok: false, error: userMessage(e) }] as const;
        }
      }),
    ).then(async (results) => {
      const ready = results.every(([, v]) => v.ok);
      const shown = (await detailed) ? results : results.map(([name, v]) => [name, { ok: v.ok }] as const);
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not-ready', checks: Object.fromEntries(shown) });
    });
  });
  for (const r of parts.rootRouters ?? []) app.use(r);
  app.use(createCdsHooksRouter(parts.cds));
  app.use(createStudyApiRouter({ queue: parts.queue, authorize: parts.apiAuthorize, ...(parts.publicBaseUrl ? { publicBaseUrl: parts.publicBaseUrl } : {}) }));
  for (const m of parts.mounts ?? []) app.use(m.path, m.handler);
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: 'not-found', message: `Nothing at ${req.method} ${req.path}.` });
  });
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    log.error({ err: userMessage(err) }, 'request failed');
    if (res.headersSent) return next(err);
    res.status(500).json({ error: 'internal', message: 'The service failed; see its log.' });
  });
  return app;
}

export interface ListeningServer {
  server: Server;
  port: number;
  /** `http://host:port` as bound (PUBLIC_BASE_URL is what clients see behind a proxy). */
  url: string;
  /** Serves this app from now on (the port is bound first so PORT=0 gives a known URL to build it with). */
  use(app: Express): void;
  close(): Promise<void>;
}

export async function listen(port: number, host: string): Promise<ListeningServer> {
  let current: Express | undefined;
  const server = createServer((req, res) => {
    if (current) return current(req, res);
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '2' }).end('{"error":"starting"}');
  });
  // EHRs reuse keep-alive connections (cheaper than a TLS handshake per hook call).
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new VbmdError('config', `Port ${port} on ${host} is already in use: stop the other process or set PORT.`));
      else if (e.code === 'EACCES') reject(new VbmdError('config', `Not allowed to listen on ${host}:${port}: choose a PORT above 1023 or run with the right permissions.`));
      else reject(e);
    });
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port: actual,
    url: `http://${shownHost}:${actual}`,
    use: (app) => {
      current = app;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
