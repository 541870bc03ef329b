import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP proxy in front of the FHIR server that fails chosen requests, to test retries for real
 * (not with a mocked fetch). `failBefore`: answer 503 without forwarding (the server never saw it);
 * `failAfter`: forward, let the server commit, then answer 503 anyway (the response was "lost"). Faults apply
 * to writes (POST, PUT) in the order they arrive.
 */
export interface FaultyProxy {
  url: string;
  requests: { method: string; path: string; status: number }[];
  /** Queue faults for the next POSTs/PUTs; 'pass' lets one through untouched. */
  failNext(mode: 'before' | 'after' | 'pass', times?: number, retryAfterS?: number): void;
  close(): Promise<void>;
}

export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const t = new URL(target);
  const queue: { mode: 'before' | 'after' | 'pass'; retryAfterS?: number }[] = [];
  const requests: FaultyProxy['requests'] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const fault = req.method === 'POST' || req.method === 'PUT' ? queue.shift() : undefined;
        const fail = (): void => {
          requests.push({ method: req.method ?? '', path: req.url ?? '', status: 503 });
          res.writeHead(503, { 'content-type': 'application/fhir+json', ...(fault?.retryAfterS !== undefined ? { 'retry-after': String(fault.retryAfterS) } : {}) });
          res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', diagnostics: 'injected 503' }] }));
        };
        if (fault?.mode === 'before') return fail();
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
        const upstream = await fetch(`${t.origin}${req.url}`, {
          method: req.method ?? 'GET',
          headers,
          ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        if (fault?.mode === 'after') return fail();
        requests.push({ method: req.method ?? '', path: req.url ?? '', status: upstream.status });
        const out: Record<string, string> = {};
        upstream.headers.forEach((v, k) => {
          if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') out[k] = v;
        });
        res.writeHead(upstream.status, out);
        res.end(body);
      })().catch((e: unknown) => {
        res.writeHead(502);
        res.end(String(e));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${t.pathname}`,
    requests,
    failNext(mode, times = 1, retryAfterS) {
      for (let i = 0; i < times; i++) queue.push({ mode, ...(retryAfterS !== undefined ? { retryAfterS } : {}) });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
