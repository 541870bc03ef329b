import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DicomWebClient, StudySummary } from '../dicom/dicomweb/client.js';
import { mapLimit } from '../util/map-limit.js';
import type { FhirClient } from '../fhir/client.js';
import { analysisJobId } from '../jobs/analysis-job.js';
import type { AnalysisJobData } from '../jobs/analysis-job.js';
import type { OpsSettings } from '../jobs/ops-settings.js';
import type { JobQueue } from '../jobs/queue.js';
import { newCorrelationId } from '../util/log-context.js';
import { listArchive } from './archive-listing.js';
import { emptyCounts, rateAndEta, writeProgress } from './progress.js';
import type { BackfillProgress } from './progress.js';
import { analysedWith, usableSeries } from './study-check.js';
import type { Algorithm } from './study-check.js';

/**
 * The archive backfill: list the PACS's studies in a date range (paged), skip those whose result from the
 * current algorithm is already in FHIR or whose job an earlier run queued (pending ones are followed, held
 * and failed ones left for a person), skip studies without a series the analysis would use, and queue the
 * rest as `backfill` jobs (after any order-driven job) with at most `window` of them unfinished at a time,
 * so memory and the queue stay bounded and the counts stay exact. The worker finds each study's patient by
 * its DICOM PatientID (and issuer) in FHIR; no match or several hold the job for review, nothing written.
 * Stopping (a crash, Ctrl-C) loses nothing: what was queued runs on, and a re-run skips it and goes on.
 */
export interface BackfillDeps {
  dicom: DicomWebClient;
  fhir: FhirClient;
  queue: JobQueue<AnalysisJobData>;
  settings: OpsSettings;
  /** The algorithm results must come from to count as analysed (engine and model version). */
  algorithm: Algorithm;
}

export interface BackfillOptions {
  from: string;
  to: string;
  modality?: string;
  bodyParts?: readonly string[];
  dryRun?: boolean;
  /** Most of this run's jobs unfinished at once (default 64). */
  window?: number;
  pollMs?: number;
  pageSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: BackfillProgress) => void;
}

export interface BackfillResult extends BackfillProgress {
  dryRun: boolean;
  /** Dry run: studies that would have been queued. */
  wouldQueue: number;
  interrupted: boolean;
}

const FINAL = new Set(['completed', 'failed', 'needs-review']);

export async function runBackfill(deps: BackfillDeps, o: BackfillOptions): Promise<BackfillResult> {
  const run = new BackfillRun(deps, o);
  return run.run();
}

class BackfillRun {
  private readonly counts = emptyCounts();
  private readonly pending = new Map<string, string>();
  private readonly startedMs = Date.now();
  private readonly runId = randomUUID();
  private readonly algoTag: string;
  private listing = true;
  private wouldQueue = 0;

  constructor(
    private readonly deps: BackfillDeps,
    private readonly o: BackfillOptions,
  ) {
    this.algoTag = createHash('sha256').update(JSON.stringify(deps.algorithm)).digest('hex').slice(0, 10);
  }

  async run(): Promise<BackfillResult> {
    const modality = this.o.modality ?? 'CT';
    let interrupted = false;
    try {
      for await (const page of listArchive(this.deps.dicom, { from: this.o.from, to: this.o.to, modality, ...(this.o.pageSize ? { pageSize: this.o.pageSize } : {}) }, this.o.signal)) {
        this.counts.found += page.length;
        await this.consider(page, modality);
        await this.report();
      }
      this.listing = false;
      while (this.pending.size > 0) {
        await this.pause();
        await this.poll();
      }
    } catch (e) {
      if (!this.o.signal?.aborted) throw e;
      interrupted = true;
    }
    const p = await this.report(true);
    return { ...p, dryRun: this.o.dryRun === true, wouldQueue: this.wouldQueue, interrupted };
  }

  /** Skips what is done, held or unusable; queues the rest (waiting for room in the window). */
  private async consider(page: StudySummary[], modality: string): Promise<void> {
    const analysed = await analysedWith(this.deps.fhir, page.map((s) => s.studyInstanceUid), this.deps.algorithm, this.o.signal);
    const fresh: { study: StudySummary; jobId: string }[] = [];
    for (const study of page) {
      if (analysed.has(study.studyInstanceUid)) {
        this.counts.skipped++;
        continue;
      }
      const jobId = await this.jobIdFor(study.studyInstanceUid);
      if (jobId) fresh.push({ study, jobId });
    }
    const verdicts = await mapLimit(fresh, 4, (f) => usableSeries(this.deps.dicom, f.study.studyInstanceUid, { modality, ...(this.o.bodyParts ? { bodyParts: this.o.bodyParts } : {}), ...(this.o.signal ? { signal: this.o.signal } : {}) }));
    for (const [i, v] of verdicts.entries()) {
      const { study, jobId } = fresh[i]!;
      if (!v.usable) this.counts.unusable++;
      else if (this.o.dryRun) this.wouldQueue++;
      else await this.enqueue(study, jobId);
    }
  }

  /**
   * The job id to queue the study under, or undefined when an earlier run's job stands: a pending one is
   * followed, a held or failed one is left (a person decides). A completed job whose result is not from the
   * current algorithm (a model upgrade) gets a new id, so the study is analysed again.
   */
  private async jobIdFor(uid: string): Promise<string | undefined> {
    for (const id of [analysisJobId(uid), `${analysisJobId(uid)}-${this.algoTag}`]) {
      const job = await this.deps.queue.get(id);
      if (!job) return id;
      if (job.state === 'completed') continue;
      if (FINAL.has(job.state)) this.counts.skipped++;
      else {
        this.pending.set(id, uid);
        this.counts.queued++;
      }
      return undefined;
    }
    this.counts.skipped++;
    return undefined;
  }

  private async enqueue(study: StudySummary, jobId: string): Promise<void> {
    while (this.pending.size >= (this.o.window ?? 64)) {
      await this.pause();
      await this.poll();
    }
    const data: AnalysisJobData = {
      studyInstanceUid: study.studyInstanceUid,
      ...(study.accessionNumber ? { accessionNumber: study.accessionNumber } : {}),
      trigger: 'backfill',
      correlationId: newCorrelationId(),
    };
    await this.deps.queue.add(data, { jobId, priority: 'backfill' });
    this.pending.set(jobId, study.studyInstanceUid);
    this.counts.queued++;
  }

  private async poll(): Promise<void> {
    for (const id of [...this.pending.keys()]) {
      const job = await this.deps.queue.get(id);
      if (!job || !FINAL.has(job.state)) continue;
      this.pending.delete(id);
      this.counts.queued--;
      if (job.state === 'completed') this.counts.done++;
      else if (job.state === 'failed') this.counts.failed++;
      else this.counts.needsReview++;
    }
    await this.report();
  }

  private async pause(): Promise<void> {
    await sleep(this.o.pollMs ?? 1000, undefined, this.o.signal ? { signal: this.o.signal } : {});
  }

  private async report(final = false): Promise<BackfillProgress> {
    const now = Date.now();
    const p: BackfillProgress = {
      runId: this.runId,
      from: this.o.from,
      to: this.o.to,
      startedAt: new Date(this.startedMs).toISOString(),
      updatedAt: new Date(now).toISOString(),
      ...(final ? { finishedAt: new Date(now).toISOString() } : {}),
      listing: this.listing && !final,
      counts: { ...this.counts },
      ...rateAndEta(this.counts, this.startedMs, now),
    };
    // Progress is for display and /metrics: a store hiccup must not stop the backfill.
    if (!this.o.dryRun) await writeProgress(this.deps.settings, p).catch(() => undefined);
    this.o.onProgress?.(p);
    return p;
  }
}
