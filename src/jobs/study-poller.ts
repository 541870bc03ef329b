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
  const lastCounts = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<unknown> | undefined;
  const abort = new AbortController();

  async function pollWatch(w: StudyWatch, source: DicomSource): Promise<boolean> {
    const studies = await findStudies(source, { accessionNumber: w.accessionNumber! }, abort.signal);
    await options.watches.markPolled(w.id, new Date());
    if (studies.length === 0) return false;
    const signature = studies
      .map((st) => `${st.studyInstanceUid}:${st.series.reduce((n, s) => n + (s.instanceCount ?? 0) + 1, 0)}`)
      .sort()
      .join(',');
    if (lastCounts.get(w.id) !== signature) {
      lastCounts.set(w.id, signature);
      lookAgain(w); // seen for the first time or still growing: look again after the settle time
      return false;
    }
    lastCounts.delete(w.id);
    for (const study of studies) {
      const data = studyRecord(w, study);
      const studyInstanceUid = study.studyInstanceUid;
      const { id, created } = await options.queue.add(data, { jobId: analysisJobId(studyInstanceUid) });
      log.info({ watch: w.id, jobId: id, created }, 'watched study arrived; analysis queued');
      // Not `found` yet: that is when the result is written (a job that fails for good leaves the order open).
      await options.watches.markQueued(w.id, studyInstanceUid);
    }
    return true;
  }

  /**
   * One look at a time per watch. A watch is busy from the moment a round or a re-check starts searching for
   * it until no re-check of it is pending any more; a round skips busy watches. Without this a round that
   * came while a re-check was searching (or the other way round) searched too: each look compares with the
   * count the other just stored, so the study cost four searches instead of two, and both could queue it.
   */
  const busy = new Set<string>();
  const rechecks = new Map<string, NodeJS.Timeout>();
  const inFlight = new Set<Promise<unknown>>();

  async function look(w: StudyWatch, source: DicomSource): Promise<boolean> {
    try {
      const ctx = { correlationId: w.correlationId ?? newCorrelationId(), stage: 'poll' };
      return await withLogContext(ctx, () => pollWatch(w, source));
    } finally {
      // pollWatch may just have scheduled the next re-check: the watch stays busy until that one has run.
      if (!rechecks.has(w.id)) busy.delete(w.id);
    }
  }

  /** A second look at one watch after the settle time, when that is shorter than the interval. */
  function lookAgain(w: StudyWatch): void {
    const settleMs = options.settleMs ?? options.intervalMs;
    if (stopped || settleMs >= options.intervalMs) return; // the next round looks again
    rechecks.set(w.id, setTimeout(() => {
      rechecks.delete(w.id);
      if (stopped) return;
      const source = typeof options.source === 'function' ? options.source() : options.source;
      const p = look(w, source)
        .catch((e: unknown) => log.warn({ watch: w.id, err: userMessage(e) }, 'study poll failed; will retry next round'))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }, settleMs));
  }

  async function pollOnce(): Promise<{ polled: number; queued: number; expired: number }> {
    const now = new Date();
    const expired = await options.watches.expire(now);
    // Bounded memory: forgetting the counts only costs each watch one extra poll before it is queued.
    if (lastCounts.size > 10_000) lastCounts.clear();
    const due = await options.watches.due(now, options.batch ?? 50);
    let queued = 0;
    const source = due.length > 0 ? (typeof options.source === 'function' ? options.source() : options.source) : undefined;
    for (const w of due) {
      if (stopped) break;
      if (busy.has(w.id)) continue; // a re-check is searching for it or will: that look decides
      busy.add(w.id);
      try {
        if (await look(w, source!)) queued++;
      } catch (e) {
        log.warn({ watch: w.id, err: userMessage(e) }, 'study poll failed; will retry next round');
      }
    }
    return { polled: due.length, queued, expired };
  }

  const loop = (): void => {
    if (stopped) return;
    running = pollOnce()
      .catch((e: unknown) => log.error({ err: userMessage(e) }, 'study poller round failed'))
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(loop, options.intervalMs);
      });
  };
  if (autoStart) timer = setTimeout(loop, Math.min(1000, options.intervalMs));

  return {
    pollOnce,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const t of rechecks.values()) clearTimeout(t);
      rechecks.clear();
      busy.clear();
      abort.abort();
      await Promise.all([running, ...inFlight]);
    },
  };
}
