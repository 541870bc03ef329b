import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditEvent } from 'fhir/r4.js';
import type { FhirClient } from '../fhir/client.js';
import { auditFallbacks } from '../metrics/metrics.js';
import { userMessage } from '../util/errors.js';
import { log } from '../util/log.js';

/**
 * Where AuditEvents go: the FHIR server (POST AuditEvent, with the service's credentials), or, when it
 * refuses or fails (no AuditEvent.c scope, a server without audit storage, an outage), a local append-only
 * file of one JSON AuditEvent per line, opened O_APPEND with mode 0600, never rewritten. An audit failure
 * never fails the clinical work: both failing is logged as an error for an operator, and counted.
 */
export interface AuditSink {
  record(event: AuditEvent): Promise<'fhir' | 'local' | 'lost'>;
}

export interface AuditTrailOptions {
  /** Unset = local file only. */
  fhir?: FhirClient;
  localFile: string;
  timeoutMs?: number;
}

export function createAuditTrail(o: AuditTrailOptions): AuditSink {
  let dirReady: Promise<unknown> | undefined;
  const appendLocal = async (event: AuditEvent): Promise<void> => {
    dirReady ??= mkdir(dirname(o.localFile), { recursive: true, mode: 0o700 });
    await dirReady;
    await appendFile(o.localFile, `${JSON.stringify(event)}\n`, { flag: 'a', mode: 0o600 });
  };
  return {
    async record(event) {
      if (o.fhir) {
        try {
          await o.fhir.create(event, { signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) });
          return 'fhir';
        } catch (e) {
          log.warn({ err: userMessage(e) }, 'the FHIR server did not take the AuditEvent; writing it to the local audit log');
          auditFallbacks.inc();
        }
      }
      try {
        await appendLocal(event);
        return 'local';
      } catch (e) {
        log.error({ err: userMessage(e), file: o.localFile }, 'AuditEvent lost: neither the FHIR server nor the local audit log took it');
        return 'lost';
      }
    },
  };
}

/** Reads the local audit log (tests, `vbmd doctor`): one AuditEvent per line. */
export async function readLocalAudit(file: string): Promise<AuditEvent[]> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as AuditEvent);
}
