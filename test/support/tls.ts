/**
 * TLS for tests and benches: a self-signed certificate for 127.0.0.1 made by openssl, and a loopback
 * TLS-terminating proxy in front of a plain-http server (Orthanc: the Debian build's own SslEnabled server
 * resets every connection after the handshake, measured with curl against Orthanc 1.10.1).
 *
 * ```ts
 * const cert = selfSignedCert();                          // { keyPem, certPem } (the cert is its own CA)
 * const proxy = await startTlsProxy({ port: orthanc.port, ...cert });
 * new DicomWebSource({ baseUrl: `${proxy.url}/dicom-web`, caPem: cert.certPem });
 * await proxy.close();
 * ```
 * Run as a program (`node --import tsx test/support/tls.ts TARGET_PORT CERT_DIR`) it serves until killed
 * and prints `PORT <n>`: the DICOMweb bench runs it in its own process, so its CPU is not the client's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';

export interface TestCert {
  keyPem: string;
  certPem: string;
}

export function selfSignedCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'vbmd-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`TLS tests need openssl (Debian package openssl): ${r.error?.message ?? r.stderr}`);
    return { keyPem: readFileSync(key, 'utf8'), certPem: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TlsProxy {
  port: number;
  /** https://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

/** TLS on a free loopback port, each connection piped to 127.0.0.1:`port` in plain TCP. */
export async function startTlsProxy(o: { port: number } & TestCert): Promise<TlsProxy> {
  const sockets = new Set<Socket>();
  const server = createServer({ key: o.keyPem, cert: o.certPem }, (tls) => {
    const plain = connect(o.port, '127.0.0.1');
    for (const s of [tls, plain]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    tls.pipe(plain).pipe(tls);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

if (process.argv[1]?.endsWith('tls.ts') && process.argv[2]) {
  const dir = process.argv[3]!;
  const cert = selfSignedCert();
  writeFileSync(join(dir, 'cert.pem'), cert.certPem);
  const proxy = await startTlsProxy({ port: Number(process.argv[2]), ...cert });
  console.log(`PORT ${proxy.port}`);
}
