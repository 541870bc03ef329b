import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A tiny loopback HTTP proxy in front of Orthanc for failure tests: `handle` may answer a request itself
 * (503, a truncated body, a bad part) or call `forward()` to pass it to the upstream unchanged.
 */
export interface TestProxy {
  url: string;
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export type ProxyHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  forward: (opts?: { onResponse?: (up: IncomingMessage, res: ServerResponse) => void }) => void,
  n: number,
) => void;

export async function startProxy(upstreamBase: string, handle: ProxyHandler, tls?: { key: string; cert: string }): Promise<TestProxy> {
  const upstream = new URL(upstreamBase);
  const requests: TestProxy['requests'] = [];
  const agent = new http.Agent({ keepAlive: false });
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers } });
    const forward = (opts: { onResponse?: (up: IncomingMessage, res: ServerResponse) => void } = {}): void => {
      const headers = { ...req.headers, host: upstream.host };
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (ur) => {
        if (opts.onResponse) return opts.onResponse(ur, res);
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    handle(req, res, forward, requests.length);
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, onRequest) : http.createServer(onRequest);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => r());
      }),
  };
}
