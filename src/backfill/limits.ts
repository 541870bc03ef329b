import { z } from 'zod';
import { VbmdError } from '../util/errors.js';
import type { OpsSettings } from '../jobs/ops-settings.js';

/**
 * How hard the archive backfill may use the PACS: at most this many WADO-RS retrievals of backfill studies
 * at once (across every worker process sharing the store) and at most this many bytes per second in all.
 * Kept in the shared store, so they can be changed while a backfill runs (`vbmd backfill limits`, or
 * `PUT /api/backfill/limits`); workers re-read them every second. Unset = no cap. Order-driven studies are
 * never capped: the caps spare the PACS from the archive, not from the clinic.
 */
export const backfillLimits = z
  .object({
    maxConcurrentRetrievals: z.number().int().min(1).max(1000).nullable(),
    maxBytesPerSecond: z.number().int().min(1024).nullable(),
  })
  .strict();
export type BackfillLimits = z.infer<typeof backfillLimits>;

export const NO_LIMITS: BackfillLimits = { maxConcurrentRetrievals: null, maxBytesPerSecond: null };
const KEY = 'backfill.limits';

export async function readLimits(settings: OpsSettings): Promise<BackfillLimits> {
  const parsed = backfillLimits.safeParse(await settings.get(KEY));
  return parsed.success ? parsed.data : NO_LIMITS;
}

/** Merges a change into the stored limits (`null` removes a cap; an absent field keeps it). */
export async function updateLimits(settings: OpsSettings, change: Partial<BackfillLimits>): Promise<BackfillLimits> {
  const next = backfillLimits.safeParse({ ...(await readLimits(settings)), ...change });
  if (!next.success) {
    throw new VbmdError('bad-input', `Invalid backfill limits: ${next.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`);
  }
  await settings.set(KEY, next.data);
  return next.data;
}

/** "20MB", "500k", "1048576" (bytes per second; k/M/G are powers of 1024). */
export function parseByteRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?(?:\/s)?\s*$/i.exec(text);
  if (!m) throw new VbmdError('bad-input', `"${text}" is not a byte rate; write e.g. 20MB (per second), 500k or 1048576.`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}
