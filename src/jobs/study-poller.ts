import { findStudies } from '../dicom/find-studies.js';
import type { DicomSource, FoundStudy } from '../dicom/source.js';
import { userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { newCorrelationId, withLogContext } from '../util/log-context.js';
import { analysisJobId } from './analysis-job.js';
import type { AnalysisJobData } from './analysis-job.js';
import type { JobQueue } from './queue.js';
import type { StudyWatch, WatchStore } from './watches.js';

/**
 * Study arrival by polling: for each waiting watch, ask the PACS (one QIDO-RS series search per poll, or the
 * folder in the sandbox) for studies with the watched accession number until one appears or the watch
 * expires. A study is queued only once its instance count stopped changing between two polls, because a PACS
 * receives a study slice by slice and an analysis of half a series would be wrong: so a study that arrived
 * complete between two polls costs two searches, and the job carries the second one's answer (the study
 * record, analysis-job.ts) so the worker asks nothing again. The second look comes `settleMs` after the
 * first (QIDO_SETTLE_S), not a whole interval later, so a study is queued within one interval plus the
 * settle time of being complete. A PACS that can say when a study is complete
 * calls the analyze API instead (Orthanc: src/jobs/orthanc/on-stable-study.lua) and no polling is needed.
 * Several pollers (several service instances) are safe: the job id is the study, so a study is queued once.
 */
export interface StudyPollerOptions {
  watches: WatchStore;
  /** A source, or a factory called per round (a folder that gains studies is rescanned each time). */
  source: DicomSource | (() => DicomSource);
  queue: JobQueue<AnalysisJobData>;
  intervalMs: number;
  /** How long a study's instance count must stay the same to count as complete (default: one interval). */
  settleMs?: number;
  /** Watches looked at per round (least recently polled first). */
  batch?: number;
}

export interface StudyPoller {
  /** One round now (tests, and the timer). */
  pollOnce(): Promise<{ polled: number; queued: number; expired: number }>;
  stop(): Promise<void>;
}

/** The job's study record: the order's watch and the search's answer about the study. */
export function studyRecord(w: StudyWatch, study: FoundStudy): AnalysisJobData {
  return {
    studyInstanceUid: study.studyInstanceUid,
    accessionNumber: w.accessionNumber!,
    ...(w.accessionSystem ? { accessionIssuer: w.accessionSystem } : {}),
    patient: `Patient/${w.patientId}`,
    ...(w.serviceRequestId ? { serviceRequest: `ServiceRequest/${w.serviceRequestId}` } : {}),
    watchId: w.id,
    trigger: 'qido-poll',
    // The id of the hook call that made the watch: the job and the write log it too.
    ...(w.correlationId ? { correlationId: w.correlationId } : {}),
    dicom: { identity: study.identity, series: study.series },
  };
}

export function startStudyPoller(options: StudyPollerOptions, autoStart = true): StudyPoller {
  const poller = new Poller(options);
  if (autoStart) poller.start();
  return { pollOnce: () => poller.pollOnce(), stop: () => poller.stop() };
}

type RoundResult = { polled: number; queued: number; expired: number };

/** The poller's state and its steps: a round, one look at a watch, the settle-time re-check, the timer. */
class Poller {
  private readonly lastCounts = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<unknown> | undefined;
  private readonly abort = new AbortController();
  /**
   * One look at a time per watch. A watch is busy from the moment a round or a re-check starts searching for
   * it until no re-check of it is pending any more; a round skips busy watches. Without this a round that
   * came while a re-check was searching (or the other way round) searched too: each look compares with the
   * count the other just stored, so the study cost four searches instead of two, and both could queue it.
   */
  private readonly busy = new Set<string>();
  private readonly rechecks = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: StudyPollerOptions) {}

  private source(): DicomSource {
    return typeof this.options.source === 'function' ? this.options.source() : this.options.source;
  }

  private async pollWatch(w: StudyWatch, source: DicomSource): Promise<boolean> {
    const studies = await findStudies(source, { accessionNumber: w.accessionNumber! }, this.abort.signal);
    await this.options.watches.markPolled(w.id, new Date());
    if (studies.length === 0) return false;
    const signature = studies
      .map((st) => `${st.studyInstanceUid}:${st.series.reduce((n, s) => n + (s.instanceCount ?? 0) + 1, 0)}`)
      .sort()
      .join(',');
    if (this.lastCounts.get(w.id) !== signature) {
      this.lastCounts.set(w.id, signature);
      this.lookAgain(w); // seen for the first time or still growing: look again after the settle time
      return false;
    }
    this.lastCounts.delete(w.id);
    await this.queueStudies(w, studies);
    return true;
  }

  private async queueStudies(w: StudyWatch, studies: FoundStudy[]): Promise<void> {
    for (const study of studies) {
      const data = studyRecord(w, study);
      const studyInstanceUid = study.studyInstanceUid;
      const { id, created } = await this.options.queue.add(data, { jobId: analysisJobId(studyInstanceUid) });
      log.info({ watch: w.id, jobId: id, created }, 'watched study arrived; analysis queued');
      // Not `found` yet: that is when the result is written (a job that fails for good leaves the order open).
      await this.options.watches.markQueued(w.id, studyInstanceUid);
    }
  }

  private async look(w: StudyWatch, source: DicomSource): Promise<boolean> {
    try {
      const ctx = { correlationId: w.correlationId ?? newCorrelationId(), stage: 'poll' };
      return await withLogContext(ctx, () => this.pollWatch(w, source));
    } finally {
      // pollWatch may just have scheduled the next re-check: the watch stays busy until that one has run.
      if (!this.rechecks.has(w.id)) this.busy.delete(w.id);
    }
  }

  /** A second look at one watch after the settle time, when that is shorter than the interval. */
  private lookAgain(w: StudyWatch): void {
    const settleMs = this.options.settleMs ?? this.options.intervalMs;
    if (this.stopped || settleMs >= this.options.intervalMs) return; // the next round looks again
    this.rechecks.set(w.id, setTimeout(() => {
      this.rechecks.delete(w.id);
      if (this.stopped) return;
      const source = this.source();
      const p = this.look(w, source)
        .catch((e: unknown) => log.warn({ watch: w.id, err: userMessage(e) }, 'study poll failed; will retry next round'))
        .finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }, settleMs));
  }

  async pollOnce(): Promise<RoundResult> {
    const now = new Date();
    const expired = await this.options.watches.expire(now);
    // Bounded memory: forgetting the counts only costs each watch one extra poll before it is queued.
    if (this.lastCounts.size > 10_000) this.lastCounts.clear();
    const due = await this.options.watches.due(now, this.options.batch ?? 50);
    let queued = 0;
    const source = due.length > 0 ? this.source() : undefined;
    for (const w of due) {
      if (this.stopped) break;
      if (this.busy.has(w.id)) continue; // a re-check is searching for it or will: that look decides
      this.busy.add(w.id);
      try {
        if (await this.look(w, source!)) queued++;
      } catch (e) {
        log.warn({ watch: w.id, err: userMessage(e) }, 'study poll failed; will retry next round');
      }
    }
    return { polled: due.length, queued, expired };
  }

  private readonly loop = (): void => {
    if (this.stopped) return;
    this.running = this.pollOnce()
      .catch((e: unknown) => log.error({ err: userMessage(e) }, 'study poller round failed'))
      .finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(this.loop, this.options.intervalMs);
      });
  };

  start(): void {
    this.timer = setTimeout(this.loop, Math.min(1000, this.options.intervalMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.rechecks.values()) clearTimeout(t);
    this.rechecks.clear();
    this.busy.clear();
    this.abort.abort();
    await Promise.all([this.running, ...this.inFlight]);
  }
}
