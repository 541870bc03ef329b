import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Request } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultWriteEvent, studyRetrievalEvent } from '../../src/audit/audit-event.js';
import { createAuditTrail, readLocalAudit } from '../../src/audit/audit-trail.js';
import { FhirClient } from '../../src/fhir/client.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';

/**
 * Where AuditEvents go, against FHIR servers over HTTP: one that takes them stores them; one that refuses
 * AuditEvent writes (403, as an EHR without the AuditEvent.c grant does) and one that is down leave them in
 * the local append-only file, one JSON line each, readable only by the service user, appended, never
 * rewritten. The events are valid R4.
 */
let open: StartedFhirServer;
let refusing: StartedFhirServer;
let dir: string;
const service = { name: 'vbmd', url: 'https://vbmd.test' };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vbmd-audit-'));
  open = await startFhirServer();
  refusing = await startFhirServer({
    verifyAccess: async (req: Request) => (req.method === 'POST' && req.path.startsWith('/AuditEvent') ? { ok: false, status: 403 } : { ok: true }),
  });
});

afterAll(async () => {
  await Promise.allSettled([open?.close(), refusing?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const retrieval = () => studyRetrievalEvent({ patient: 'Patient/a1', studyInstanceUid: '1.2.3.4', pacs: { name: 'PACS', url: 'https://pacs.test/dicom-web' }, service, correlationId: 'corr-audit-1' });
const write = () => resultWriteEvent({ patient: 'Patient/a1', fhirServer: { name: 'FHIR', url: 'https://ehr.test/fhir' }, resources: ['Observation/o1', 'RiskAssessment/r1'], service, correlationId: 'corr-audit-1' });

describe('audit trail', () => {
  it('stores AuditEvents on a FHIR server that takes them', async () => {
    const file = join(dir, 'open.ndjson');
    const trail = createAuditTrail({ fhir: new FhirClient({ baseUrl: open.baseUrl }), localFile: file });
    expect(await trail.record(retrieval())).toBe('fhir');
    const stored = (await (await fetch(`${open.baseUrl}/AuditEvent`)).json()) as { entry?: { resource: { type: { code: string } } }[] };
    expect(stored.entry?.map((e) => e.resource.type.code)).toEqual(['110104']);
    expect(await readLocalAudit(file)).toEqual([]);
  });

  it('appends to the local log when the FHIR server refuses or is down; valid R4, mode 0600', async () => {
    const file = join(dir, 'audit', 'fallback.ndjson');
    const refused = createAuditTrail({ fhir: new FhirClient({ baseUrl: refusing.baseUrl, retry: { retries: 0 } }), localFile: file });
    expect(await refused.record(retrieval())).toBe('local');
    const down = createAuditTrail({ fhir: new FhirClient({ baseUrl: 'http://127.0.0.1:9/fhir', retry: { retries: 0 } }), localFile: file });
    expect(await down.record(write())).toBe('local');
    const local = await readLocalAudit(file);
    expect(local.map((e) => e.type.code)).toEqual(['110104', 'rest']);
    expect(local[1]!.entity?.map((e) => e.what?.reference).filter(Boolean)).toEqual(['Patient/a1', 'Observation/o1', 'RiskAssessment/r1']);
    for (const e of local) expect(fhirValidationIssues(e).filter((i) => i.severity === 'error')).toEqual([]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = (await (await fetch(`${refusing.baseUrl}/AuditEvent`)).json()) as { entry?: unknown[] };
    expect(stored.entry ?? []).toHaveLength(0);
  });
});
