import type { Patient } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import type { DicomSource, StudyRef } from '../dicom/source.js';
import type { PacsStep } from '../dicom-output/pacs-step.js';
import type { FhirClient } from '../fhir/client.js';
import { writeAnalysis } from '../fhir/write-analysis.js';
import { VbmdError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { AnalysisJobData, AnalysisJobResult } from './analysis-job.js';
import type { JobContext, JobHandler } from './queue.js';
import type { WatchStore } from './watches.js';

/**
 * The worker's job: fetch -> analyze -> write. The images come from the configured DicomSource (DICOMweb
 * in production, a folder in the sandbox), the measurement from the engine, and the results go to FHIR in
 * one idempotent transaction (writeAnalysis), so a job that runs twice (at-least-once delivery) writes once.
 * The patient and order come from the watch the order-sign hook left, else from the trigger, else from the
 * study's DICOM PatientID looked up as a Patient identifier; an ambiguous or unknown patient fails the job
 * with the reason instead of guessing.
 */
export type AnalyzeStudy = (source: DicomSource, ref: StudyRef, options: { signal: AbortSignal }) => Promise<VbmdReport>;

export interface AnalysisWorkerDeps {
  /** A source, or a factory called per job (a folder that gains studies is rescanned each time). */
  source: DicomSource | (() => DicomSource);
  analyze: AnalyzeStudy;
  fhir: FhirClient;
  watches: WatchStore;
  /** Restricts the PatientID lookup to one identifier system (the MRN system), when set. */
  patientIdentifierSystem?: string;
  /** Extra `meta.tag` codings on what is written (the sandbox marks demo data). */
  tags?: { system: string; code: string; display?: string }[];
  /** DICOM results (SR, SEG, key image) to the PACS after the FHIR write; none when no STOW target is configured. */
  pacs?: PacsStep;
}

async function resolvePatient(deps: AnalysisWorkerDeps, dicomPatientId: string | undefined, studyUid: string, signal: AbortSignal): Promise<string> {
  if (!dicomPatientId) {
    throw new VbmdError('bad-input', `Study ${studyUid} has no PatientID and no order or caller named the patient; send the patient with the analyze request.`);
  }
  const identifier = deps.patientIdentifierSystem ? `${deps.patientIdentifierSystem}|${dicomPatientId}` : dicomPatientId;
  const found = await deps.fhir.search<Patient>('Patient', { identifier, _count: 2 }, { signal, maxPages: 1 });
  if (found.length === 1 && found[0]!.id) return `Patient/${found[0]!.id}`;
  throw new VbmdError(
    'bad-input',
    found.length === 0
      ? `No Patient in ${new URL(deps.fhir.baseUrl).origin} has the DICOM PatientID of study ${studyUid}; results were not written (send the patient with the analyze request).`
      : `Several Patients in ${new URL(deps.fhir.baseUrl).origin} match the DICOM PatientID of study ${studyUid}; results were not written (send the patient with the analyze request).`,
  );
}

export function createAnalysisHandler(deps: AnalysisWorkerDeps): JobHandler<AnalysisJobData> {
  return async (job: AnalysisJobData, ctx: JobContext): Promise<AnalysisJobResult> => {
    const t0 = Date.now();
    const source = typeof deps.source === 'function' ? deps.source() : deps.source;
    const report = await deps.analyze(source, { studyInstanceUid: job.studyInstanceUid }, { signal: ctx.signal });
    const accession = job.accessionNumber ?? report.input.accessionNumber;
    const watch = job.watchId ? await deps.watches.get(job.watchId) : accession ? await deps.watches.findByAccession(accession) : undefined;
    const patient = job.patient ?? (watch ? `Patient/${watch.patientId}` : await resolvePatient(deps, report.input.patientId, job.studyInstanceUid, ctx.signal));
    const serviceRequest = job.serviceRequest ?? (watch?.serviceRequestId ? `ServiceRequest/${watch.serviceRequestId}` : undefined);
    const written = await writeAnalysis(
      deps.fhir,
      report,
      {
        patient,
        ...(serviceRequest ? { serviceRequest } : {}),
        ...(job.imagingStudy ? { imagingStudy: job.imagingStudy } : {}),
        ...(deps.tags ? { tags: deps.tags } : {}),
      },
      ctx.signal,
    );
    if (watch && watch.status !== 'found') await deps.watches.markFound(watch.id, job.studyInstanceUid);
    // After the FHIR write, so the record has the result even if the PACS is down; the step retries itself.
    const pacs = deps.pacs ? await deps.pacs(report, source, ctx.signal) : undefined;
    log.info(
      { jobId: ctx.id, attempt: ctx.attempt, category: report.summary.category, ms: Date.now() - t0, observation: written.observation.id },
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
