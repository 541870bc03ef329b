import { z } from 'zod';
import type { OpsSettings } from '../jobs/ops-settings.js';

/**
 * Where an archive backfill stands. The backfill command keeps it up to date in the shared store (so
 * /metrics on any API node shows it) and draws the progress bar from it. Counts are studies:
 *  - found: listed by QIDO in the date range (and filters) so far;
 *  - skipped: already analysed with the current model version, or already queued/held by an earlier run;
 *  - unusable: no series the analysis would use (as the analysis chooses them);
 *  - queued: this run's jobs not finished yet; done / failed / needsReview: finished this run.
 */
export const progressCounts = z.object({
  found: z.number().int().min(0),
  skipped: z.number().int().min(0),
  unusable: z.number().int().min(0),
  queued: z.number().int().min(0),
  done: z.number().int().min(0),
  failed: z.number().int().min(0),
  needsReview: z.number().int().min(0),
});
export type ProgressCounts = z.infer<typeof progressCounts>;

export const backfillProgress = z.object({
  runId: z.string(),
  from: z.string(),
  to: z.string(),
  startedAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().optional(),
  /** Still listing the archive (the total is not known yet). */
  listing: z.boolean(),
  counts: progressCounts,
  /** Studies finished per minute since the run started. */
  ratePerMinute: z.number().min(0),
  /** Seconds until the known work is done at that rate; null while nothing has finished. */
  etaSeconds: z.number().min(0).nullable(),
});
export type BackfillProgress = z.infer<typeof backfillProgress>;

const KEY = 'backfill.progress';

export const emptyCounts = (): ProgressCounts => ({ found: 0, skipped: 0, unusable: 0, queued: 0, done: 0, failed: 0, needsReview: 0 });

export async function readProgress(settings: OpsSettings): Promise<BackfillProgress | undefined> {
  const p = backfillProgress.safeParse(await settings.get(KEY));
  return p.success ? p.data : undefined;
}

export async function writeProgress(settings: OpsSettings, p: BackfillProgress): Promise<void> {
  await settings.set(KEY, p);
}

/** Rate since the start and the ETA of what is known to remain (listed but not finished). */
export function rateAndEta(counts: ProgressCounts, startedMs: number, nowMs: number): { ratePerMinute: number; etaSeconds: number | null } {
  const finished = counts.done + counts.failed + counts.needsReview;
  const minutes = Math.max(1e-6, (nowMs - startedMs) / 60_000);
  const ratePerMinute = finished / minutes;
  const remaining = counts.found - counts.skipped - counts.unusable - finished;
  return { ratePerMinute, etaSeconds: finished === 0 ? null : Math.max(0, (remaining / ratePerMinute) * 60) };
}
