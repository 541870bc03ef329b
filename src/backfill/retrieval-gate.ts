import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RetrievalGate, RetrievalLease } from '../dicom/dicomweb/http.js';
import type { LeaseStore, OpsSettings } from '../jobs/ops-settings.js';
import { retrievalBytes, retrievalSeconds } from '../metrics/metrics.js';
import { logContext } from '../util/log-context.js';
import { readLimits } from './limits.js';
import type { BackfillLimits } from './limits.js';

/**
 * The retrieval gate of the worker's DICOMweb source (src/dicom/dicomweb/http.ts RetrievalGate). Every
 * retrieval is measured (bytes, seconds). A retrieval for a backfill job (the job's log context says so)
 * first takes a lease from the shared LeaseStore, so at most `maxConcurrentRetrievals` run across all
 * workers, and is paced to `maxBytesPerSecond / maxConcurrentRetrievals` (its share of the cap: the sum over
 * all slots never exceeds the cap; a lone retrieval is slower than it could be, which is the safe side).
 * Without a concurrency cap one retrieval may use the whole rate (one worker process; with several, set
 * both). Limits are re-read at most every `refreshMs`, so a change reaches running retrievals within it.
 */
export interface RetrievalGateOptions {
  settings: OpsSettings;
  leases: LeaseStore;
  refreshMs?: number;
  /** A lease outlives its holder (a dead worker) by this much at most; renewed while data flows. */
  leaseTtlMs?: number;
  /** How often a waiting retrieval asks again for a slot. */
  waitStepMs?: number;
}

export function createRetrievalGate(o: RetrievalGateOptions): RetrievalGate {
  const refreshMs = o.refreshMs ?? 1000;
  const ttlMs = o.leaseTtlMs ?? 120_000;
  const step = o.waitStepMs ?? 200;
  let cached: { at: number; limits: BackfillLimits } | undefined;
  const limits = async (): Promise<BackfillLimits> => {
    if (!cached || Date.now() - cached.at > refreshMs) cached = { at: Date.now(), limits: await readLimits(o.settings) };
    return cached.limits;
  };

  async function takeSlot(holder: string, signal: AbortSignal | undefined): Promise<boolean> {
    for (;;) {
      const cap = (await limits()).maxConcurrentRetrievals;
      if (cap === null) return false;
      if (await o.leases.tryAcquire(holder, cap, ttlMs)) return true;
      await sleep(step, undefined, signal ? { signal } : {});
    }
  }

  return {
    async begin(what): Promise<RetrievalLease> {
      const priority = logContext()?.priority ?? 'interactive';
      const holder = `${process.pid}-${randomUUID()}`;
      const capped = priority === 'backfill';
      const leased = capped ? await takeSlot(holder, what.signal) : false;
      const t0 = performance.now();
      let bytes = 0;
      let lastRenew = Date.now();
      /** Holds the stream back while this retrieval is ahead of its share of the byte rate. */
      const pace = async (): Promise<void> => {
        if (leased && Date.now() - lastRenew > ttlMs / 4) {
          lastRenew = Date.now();
          await o.leases.renew(holder, ttlMs);
        }
        const l = await limits();
        if (l.maxBytesPerSecond === null) return;
        const rate = l.maxBytesPerSecond / (l.maxConcurrentRetrievals ?? 1);
        const aheadMs = (bytes / rate) * 1000 - (performance.now() - t0);
        if (aheadMs > 1) await sleep(aheadMs, undefined, what.signal ? { signal: what.signal } : {});
      };
      return {
        // Synchronous for uncapped retrievals: a returned promise would pause the stream after every part.
        received: (n) => {
          bytes += n;
          return capped ? pace() : undefined;
        },
        end: (outcome) => {
          retrievalSeconds.observe({ priority, outcome }, (performance.now() - t0) / 1000);
          if (outcome === 'ok') retrievalBytes.observe({ priority }, bytes);
          if (leased) void o.leases.release(holder).catch(() => undefined);
        },
      };
    },
  };
}
