import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { connectOriginsFromConfig, createSmartAppRouter, frameAncestorsFromConfig } from '../../smart-app/server.js';
import { loadEnvConfig } from '../../src/config.js';

describe('createSmartAppRouter', () => {
  it('serves the built files with a CSP bound to the app and FHIR origins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vbmd-smart-static-'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    const app = express().use('/smart', createSmartAppRouter({ distDir: dir, fhirOrigins: ['https://fhir.example.org'] }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/smart/index.html`);
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("connect-src 'self' https://fhir.example.org");
      expect(csp).toContain("script-src 'self';");
      expect(csp).toContain("frame-ancestors 'self' https://fhir.example.org");
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      // What the browser app needs before it launches (SMART_CLIENT_ID; sandbox or not), from its own origin.
      const settings = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/smart/settings.json`);
      expect(await settings.json()).toEqual({ clientId: 'vbmd-smart-app', sandbox: true });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says how to build when dist is missing, and reads SMART_FRAME_ANCESTORS', () => {
    expect(() => createSmartAppRouter({ distDir: '/nonexistent/vbmd-dist' })).toThrow(/npm run build:smart/);
    const cfg = loadEnvConfig({ SMART_FRAME_ANCESTORS: 'https://ehr.example.org, https://ehr2.example.org' });
    expect(frameAncestorsFromConfig(cfg.SMART_FRAME_ANCESTORS)).toEqual(["'self'", 'https://ehr.example.org', 'https://ehr2.example.org']);
    expect(() => loadEnvConfig({ SMART_FRAME_ANCESTORS: 'ehr.example.org' })).toThrow(/SMART_FRAME_ANCESTORS/);
    expect(frameAncestorsFromConfig(undefined)).toBeUndefined();
    const c2 = loadEnvConfig({ FHIR_BASE_URL: 'https://fhir.example.org/r4', SMART_CONNECT_ORIGINS: 'https://auth.example.org' });
    expect(connectOriginsFromConfig(c2.FHIR_BASE_URL, c2.SMART_CONNECT_ORIGINS)).toEqual(['https://fhir.example.org', 'https://auth.example.org']);
  });
});
