import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import express from 'express';
import type { FhirRepository } from '@medplum/fhir-router';
import { createFhirApp } from './app.js';
import type { FhirAppOptions } from './app.js';

export interface StartedFhirServer {
  /** e.g. `http://127.0.0.1:41234/fhir` (no trailing slash). */
  baseUrl: string;
  repository: FhirRepository;
  close(): Promise<void>;
}

export interface StartFhirServerOptions extends Omit<FhirAppOptions, 'baseUrl'> {
  /** 0 (default) = a free port. */
  port?: number;
  /** Loopback only: this server has no authentication of its own unless verifyAccess is given. */
  host?: '127.0.0.1';
  /** Mount path, default `/fhir`. */
  path?: string;
}

/** Starts the in-process FHIR R4 server on loopback (tests, `vbmd start` sandbox). Links in responses
 * use the Host the client called, so they stay correct behind the sandbox's port. */
export async function startFhirServer(options: StartFhirServerOptions = {}): Promise<StartedFhirServer> {
  const host = options.host ?? '127.0.0.1';
  const mount = `/${(options.path ?? '/fhir').replace(/^\/+|\/+$/g, '')}`;
  const fhir = createFhirApp(options);
  const outer = express();
  outer.disable('x-powered-by');
  outer.use(mount, fhir);
  outer.use((req, res) => {
    res.status(404).type('application/fhir+json').send(
      JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', details: { text: `Not found: ${req.path.slice(0, 100)} (the FHIR base is ${mount})` } }] }),
    );
  });
  const server = createServer(outer);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://${host}:${port}${mount === '/' ? '' : mount}`,
    repository: fhir.repository,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
