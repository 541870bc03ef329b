import { vbmdReport } from '../bmd/report.js';
import type { VbmdReport } from '../bmd/report.js';
import type { DicomSource, FoundStudy, SeriesCandidate, StudyRef } from '../dicom/source.js';
import type { LoadedVolume } from '../imaging/volume.js';
import type { PacsStep } from '../dicom-output/pacs-step.js';
import type { FhirClient } from '../fhir/client.js';
import { writeAnalysis } from '../fhir/write-analysis.js';
import { resultWriteEvent, studyRetrievalEvent } from '../audit/audit-event.js';
import type { AuditParty } from '../audit/audit-event.js';
import type { AuditSink } from '../audit/audit-trail.js';
import { fhirWriteFailures, fhirWriteSeconds, observeTimings } from '../metrics/metrics.js';
import { VbmdError } from '../util/errors.js';
import { log } from '../util/log.js';
import { newCorrelationId, withLogContext } from '../util/log-context.js';
import type { AnalysisJobData, AnalysisJobResult } from './analysis-job.js';
import { chartTarget } from './chart-target.js';
import type { ChartTarget } from './chart-target.js';
import type { PatientMatchConfig } from './patient-match.js';
import { needsReview } from './queue.js';
import { findStudies } from '../dicom/find-studies.js';
import type { JobContext, JobHandler } from './queue.js';
import type { WatchStore } from './watches.js';

/**
 * The worker's job: check whose chart -> fetch -> analyze -> write. First the study's DICOM patient is
 * checked against the FHIR Patient its result is for (chart-target.ts): on any doubt the job is held as
 * `needs-review` and nothing is read or written. The images come from the configured DicomSource (DICOMweb
 * in production, a folder in the sandbox), the measurement from the engine, and the results go to FHIR in
 * one idempotent transaction (writeAnalysis), so a job that runs twice (at-least-once delivery) writes once.
 * A finished analysis is saved with the job before the write, so a failed write is retried from it instead
 * of downloading and analysing the study again. The job runs in its study's log context (correlation id);
 * stage times and the FHIR write are measured (src/metrics), the retrieval and the write audited (src/audit).
 */
/** `series`: the study's series from the record's search, so the analysis chooses among them without asking
 * again; `onLoaded` receives the volume, kept for the DICOM results so the series is retrieved once. */
export type AnalyzeStudy = (
  source: DicomSource,
  ref: StudyRef,
  options: { signal: AbortSignal; series?: SeriesCandidate[]; onLoaded?: (loaded: LoadedVolume) => void },
) => Promise<VbmdReport>;

export interface AnalysisWorkerDeps {
  /** A source, or a factory called per job (a folder that gains studies is rescanned each time). */
  source: DicomSource | (() => DicomSource);
  analyze: AnalyzeStudy;
  fhir: FhirClient;
  watches: WatchStore;
  /** How the study's DICOM patient is matched to FHIR Patients (PATIENT_MRN_SYSTEM, DICOM_ISSUER_SYSTEMS). */
  patientMatch?: PatientMatchConfig;
  /** Extra `meta.tag` codings on what is written (the sandbox marks demo data). */
  tags?: { system: string; code: string; display?: string }[];
  /** DICOM results (SR, SEG, key image) to the PACS after the FHIR write; none when no STOW target is configured. */
  pacs?: PacsStep;
  /** AuditEvents for the study retrieval and the result write (src/audit), with who did what to whom. */
  audit?: { sink: AuditSink; service: AuditParty; pacs: AuditParty };
}

/** The analysis an earlier attempt of this job saved, else a fresh one (saved before anything is written). */
async function analyzeOnce(
  deps: AnalysisWorkerDeps,
  source: DicomSource,
  job: AnalysisJobData,
  study: FoundStudy,
  ctx: JobContext,
  patient: string,
): Promise<{ report: VbmdReport; loaded?: LoadedVolume }> {
  const saved = vbmdReport.safeParse(await ctx.checkpoint?.load());
  if (saved.success && saved.data.input.studyInstanceUid === job.studyInstanceUid) {
    log.info({ jobId: ctx.id, attempt: ctx.attempt }, 'analysis job: using the analysis saved by an earlier attempt');
    return { report: saved.data };
  }
  let report: VbmdReport;
  let loaded: LoadedVolume | undefined;
  try {
    report = await deps.analyze(source, { studyInstanceUid: job.studyInstanceUid }, { signal: ctx.signal, series: study.series, onLoaded: (v) => (loaded = v) });
  } catch (e) {
    await auditRetrieval(deps, job, patient, 'serious-failure');
    throw e;
  }
  await auditRetrieval(deps, job, patient, 'success');
  observeTimings(report.timingsMs);
  await ctx.checkpoint?.save(report);
  return { report, ...(loaded ? { loaded } : {}) };
}

async function auditRetrieval(deps: AnalysisWorkerDeps, job: AnalysisJobData, patient: string, outcome: 'success' | 'serious-failure'): Promise<void> {
  if (!deps.audit) return;
  const { sink, service, pacs } = deps.audit;
  await sink.record(studyRetrievalEvent({ patient, studyInstanceUid: job.studyInstanceUid, pacs, service, outcome, ...(job.correlationId ? { correlationId: job.correlationId } : {}) }));
}

/** The FHIR write, timed and counted (latency and failures are on /metrics), then audited. */
async function writeResults(deps: AnalysisWorkerDeps, report: VbmdReport, job: AnalysisJobData, target: ChartTarget, signal: AbortSignal) {
  const t0 = performance.now();
  let written: Awaited<ReturnType<typeof writeAnalysis>>;
  try {
    written = await writeAnalysis(
      deps.fhir,
      report,
      {
        patient: target.patient,
        ...(target.serviceRequest ? { serviceRequest: target.serviceRequest } : {}),
        ...(job.imagingStudy ? { imagingStudy: job.imagingStudy } : {}),
        ...(deps.tags ? { tags: deps.tags } : {}),
      },
      signal,
    );
  } catch (e) {
    fhirWriteSeconds.observe({ outcome: 'failed' }, (performance.now() - t0) / 1000);
    fhirWriteFailures.inc();
    throw e;
  }
  fhirWriteSeconds.observe({ outcome: 'ok' }, (performance.now() - t0) / 1000);
  if (deps.audit) {
    const resources = [`Observation/${written.observation.id}`, ...(written.riskAssessment ? [`RiskAssessment/${written.riskAssessment.id}`] : [])];
    const fhirServer = { name: 'FHIR server', url: deps.fhir.baseUrl };
    const correlation = job.correlationId ? { correlationId: job.correlationId } : {};
    await deps.audit.sink.record(resultWriteEvent({ patient: target.patient, fhirServer, resources, service: deps.audit.service, ...correlation }));
  }
  return written;
}

export function createAnalysisHandler(deps: AnalysisWorkerDeps): JobHandler<AnalysisJobData> {
  const handle = runJob(deps);
  // Every log line of the job (retrieval retries, the engine, the FHIR client) carries its correlation id.
  return (job, ctx) =>
    withLogContext({ correlationId: job.correlationId ?? newCorrelationId(), stage: 'job', jobId: ctx.id, priority: job.trigger === 'backfill' ? 'backfill' : 'interactive' }, () =>
      handle(job, ctx),
    );
}

/** The record's study (from the poller's search), else one search now; not-found while it is not there. */
async function studyOf(source: DicomSource, job: AnalysisJobData, signal: AbortSignal): Promise<FoundStudy> {
  if (job.dicom) return { studyInstanceUid: job.studyInstanceUid, identity: job.dicom.identity, series: job.dicom.series };
  const found = (await findStudies(source, { studyInstanceUid: job.studyInstanceUid }, signal))[0];
  if (!found) throw new VbmdError('not-found', `Study ${job.studyInstanceUid} is not on ${source.description} (yet).`);
  return found;
}

function runJob(deps: AnalysisWorkerDeps): JobHandler<AnalysisJobData> {
  return async (job: AnalysisJobData, ctx: JobContext): Promise<AnalysisJobResult> => {
    const t0 = Date.now();
    const source = typeof deps.source === 'function' ? deps.source() : deps.source;
    const study = await studyOf(source, job, ctx.signal);
    let target: ChartTarget;
    try {
      target = await chartTarget({ ...deps, source }, job, study.identity, ctx.signal);
    } catch (e) {
      if (needsReview(e)) log.warn({ jobId: ctx.id, attempt: ctx.attempt, reason: (e as Error).message }, 'analysis job held for review; nothing written');
      throw e;
    }
    const { report, loaded } = await analyzeOnce(deps, source, job, study, ctx, target.patient);
    const written = await writeResults(deps, report, job, target, ctx.signal);
    // The order's one mark: found only now that the result is written (a job that fails for good leaves it open).
    if (target.watchId) await deps.watches.markFound(target.watchId, job.studyInstanceUid);
    // After the FHIR write, so the record has the result even if the PACS is down; the step retries itself.
    const pacs = deps.pacs ? await deps.pacs(report, source, ctx.signal, loaded) : undefined;
    log.info(
      { jobId: ctx.id, attempt: ctx.attempt, category: report.summary.category, ms: Date.now() - t0, observation: written.observation.id, patientMatchedBy: target.matchedBy },
      'analysis job done',
    );
    return {
      observation: `Observation/${written.observation.id}`,
      ...(written.riskAssessment ? { riskAssessment: `RiskAssessment/${written.riskAssessment.id}` } : {}),
      created: written.observation.created,
      vbmdMgCm3: report.summary.vbmd,
      category: report.summary.category,
      ...(report.input.seriesInstanceUid ? { seriesInstanceUid: report.input.seriesInstanceUid } : {}),
      ...(pacs ? { pacs } : {}),
    };
  };
}
