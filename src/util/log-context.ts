import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';

/**
 * What every log line written while one study is handled carries, without passing it through every call:
 * the study's correlation id (made at the hook call that created its order's watch, or when the study
 * arrived another way, and carried in the watch and the job), and the kind of work. The logger
 * (src/util/log.ts) adds these fields to each line written inside `withLogContext`, so the DICOMweb and FHIR
 * clients' retry lines, the engine and the write all name the study's correlation id. No PHI goes in here.
 */
export interface LogContext {
  correlationId: string;
  /** e.g. `hook`, `poll`, `job`. */
  stage?: string;
  jobId?: string;
  /** Archive backfill or interactive (an order, an API call): the retrieval caps apply to the backfill only. */
  priority?: 'interactive' | 'backfill';
}

const storage = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

export function logContext(): LogContext | undefined {
  return storage.getStore();
}

export function currentCorrelationId(): string | undefined {
  return storage.getStore()?.correlationId;
}

export function newCorrelationId(): string {
  return randomUUID();
}

/**
 * A correlation id a caller sent (X-Correlation-Id) is kept only when it is a plain token, so a header
 * cannot smuggle text (or PHI) into every log line.
 */
export function acceptCorrelationId(header: string | undefined): string {
  return header && /^[A-Za-z0-9._-]{8,64}$/.test(header) ? header : newCorrelationId();
}

/** Patient ids in logs are hashed (the same id gives the same hash, so lines can still be joined). */
export function hashForLog(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 16);
}
