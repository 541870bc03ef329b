import { describe, expect, it } from 'vitest';
import { monthWindows, parseDay } from '../../src/backfill/archive-listing.js';
import { parseByteRate } from '../../src/backfill/limits.js';
import { emptyCounts, rateAndEta } from '../../src/backfill/progress.js';
import type { BackfillProgress } from '../../src/backfill/progress.js';
import { progressLine, summaryLine } from '../../src/cli/backfill.js';

/** The backfill's pure parts: month windows of a range, byte rates, rate and ETA, the progress and summary lines. */
describe('backfill pieces', () => {
  it('cuts a range into calendar months, clipped, leap days included', () => {
    expect(monthWindows(parseDay('2023-12-15', 'from'), parseDay('2024-03-01', 'to'))).toEqual([
      ['20231215', '20231231'],
      ['20240101', '20240131'],
      ['20240201', '20240229'],
      ['20240301', '20240301'],
    ]);
    expect(() => parseDay('2024-02-30', '--from')).toThrow(/--from "2024-02-30" is not a date/);
    expect(() => monthWindows(parseDay('2024-02-02', 'from'), parseDay('2024-02-01', 'to'))).toThrow(/ends .* before it starts/);
  });

  it('reads byte rates', () => {
    expect(parseByteRate('20MB')).toBe(20 * 1024 ** 2);
    expect(parseByteRate('500k')).toBe(500 * 1024);
    expect(parseByteRate('1048576')).toBe(1048576);
    expect(parseByteRate('1.5 MiB/s')).toBe(1.5 * 1024 ** 2);
    expect(() => parseByteRate('fast')).toThrow(/not a byte rate/);
  });

  it('computes the rate and ETA of the known remaining work, none before anything finished', () => {
    const c = { ...emptyCounts(), found: 100, skipped: 10, unusable: 10, done: 15, failed: 3, needsReview: 2, queued: 20 };
    const { ratePerMinute, etaSeconds } = rateAndEta(c, 0, 120_000);
    expect(ratePerMinute).toBe(10);
    expect(etaSeconds).toBe(360);
    expect(rateAndEta({ ...emptyCounts(), found: 5, queued: 5 }, 0, 1000).etaSeconds).toBeNull();
  });

  it('draws one progress line and one summary line', () => {
    const p: BackfillProgress = {
      runId: 'r',
      from: '2019-01-01',
      to: '2026-12-31',
      startedAt: '2026-01-01T00:00:00Z',
      updatedAt: '2026-01-01T00:02:00Z',
      listing: true,
      counts: { found: 100, skipped: 10, unusable: 10, queued: 20, done: 15, failed: 3, needsReview: 2 },
      ratePerMinute: 10,
      etaSeconds: 360,
    };
    expect(progressLine(p)).toBe('[#####...............] done 15  queued 20  failed 3  needs-review 2  skipped 10  unusable 10  of 100+  10.0/min  ETA ~6m00s');
    expect(summaryLine({ ...p, listing: false, dryRun: false, wouldQueue: 0, interrupted: false })).toBe(
      'backfill finished 2019-01-01..2026-12-31: 100 found, 15 analysed, 2 held for review, 3 failed, 20 still queued, 10 skipped (done before), 10 without a usable series; 10.0 studies/min.',
    );
    expect(summaryLine({ ...p, dryRun: true, wouldQueue: 80, interrupted: false })).toMatch(/dry run\): 100 studies found, 80 would be queued/);
  });
});
