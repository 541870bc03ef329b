/**
 * The CDS Hooks router on a real loopback HTTP server, with trusted client keys, SQLite (in memory) watches
 * and feedback, for tests of the hook surface.
 *
 * ```ts
 * const cds = await startCdsApp({ clients: [key], deps: { clientFhirServers } });
 * const r = await cds.post(key, '/cds-services/vbmd-order-sign', body);   // signed JWT for the exact URL
 * await cds.close();
 * ```
 */
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import express from 'express';
import { createClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import { signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { loadCtValueSet } from '../../cds-hooks/ct-value-set.js';
import { SqliteFeedbackStore } from '../../cds-hooks/feedback-store.js';
import { MemoryReplayCache } from '../../cds-hooks/replay-cache.js';
import type { ReplayCache } from '../../cds-hooks/replay-cache.js';
import { createCdsHooksRouter } from '../../cds-hooks/router.js';
import type { CdsHooksDeps } from '../../cds-hooks/router.js';
import { SqliteWatchStore } from '../../src/jobs/watches.js';

export interface CdsApp {
  base: string;
  watches: SqliteWatchStore;
  post(key: CdsClientKey, path: string, body: unknown): Promise<{ status: number; ms: number; body: Record<string, unknown> | null }>;
  close(): Promise<void>;
}

/** Router dependencies for tests: the given client keys trusted, SQLite (in memory) watches and feedback. */
export function testCdsDeps(o: { clients: CdsClientKey[]; publicBaseUrl: string; deps?: Partial<CdsHooksDeps>; replayCache?: ReplayCache }): {
  deps: CdsHooksDeps;
  watches: SqliteWatchStore;
  db: Database.Database;
} {
  const db = new Database(':memory:');
  const watches = new SqliteWatchStore(db);
  const deps: CdsHooksDeps = {
    verifier: createClientJwtVerifier({
      clients: o.clients.map((k) => ({ iss: k.iss, jwks: { keys: [k.publicJwk as Record<string, unknown>] } })),
      replayCache: o.replayCache ?? new MemoryReplayCache(),
      maxLifetimeS: 3600,
    }),
    publicBaseUrl: o.publicBaseUrl,
    valueSet: loadCtValueSet(),
    declinePctPerYear: 5,
    watches,
    watchTtlMs: 3600_000,
    feedback: new SqliteFeedbackStore(db),
    ...o.deps,
  };
  return { deps, watches, db };
}

export async function startCdsApp(o: { clients: CdsClientKey[]; deps?: Partial<CdsHooksDeps>; replayCache?: ReplayCache }): Promise<CdsApp> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const { deps, watches, db } = testCdsDeps({ ...o, publicBaseUrl: base });
  const app = express();
  app.use(createCdsHooksRouter(deps));
  server.on('request', app);
  return {
    base,
    watches,
    post: async (key, path, body) => {
      const url = `${base}${path}`;
      const t0 = Date.now();
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, ms: Date.now() - t0, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
    },
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      db.close();
    },
  };
}
