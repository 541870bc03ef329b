import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

/** What the scripted server does with one request: answer it, cut the connection, or stay silent. */
export type Step = (req: IncomingMessage, res: ServerResponse) => void;

export interface ScriptedServer {
  /** http://127.0.0.1:PORT plus the path given. */
  base: string;
  port: number;
  /** Every request received, in order. */
  calls: { url: string; headers: IncomingMessage['headers'] }[];
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => {
    s.close(r);
    s.closeAllConnections();
  })));
});

/**
 * A loopback HTTP server whose n-th request gets steps[n] (599 once they run out), for unit tests of one
 * client module's retry and error handling. Closed after each test.
 */
export async function scriptedServer(steps: Step[], path = ''): Promise<ScriptedServer> {
  const calls: ScriptedServer['calls'] = [];
  const server = createServer((req, res) => {
    calls.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    const step = steps.shift();
    if (!step) return void res.writeHead(599).end();
    step(req, res);
  });
  server.keepAliveTimeout = 100;
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.unref();
  const port = (server.address() as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}${path}`, port, calls };
}
