import { z } from 'zod';
import type { PacsJobResult } from '../dicom-output/pacs-step.js';

/**
 * One analysis job = one study, and its data is the study's record from the hook to the FHIR write: the
 * patient and order (from the watch the order-sign hook made), the accession with its issuer, and what the
 * PACS said about the study in one search (its patient identity and series, `dicom`). The poller fills it
 * from the search that saw the study complete; a job that arrives without it (the analyze API, a push from
 * the PACS, an ImagingStudy notification, the backfill) gets it from one search in the worker. Either way the
 * worker neither searches again nor re-reads the watch, and the analysis chooses among `dicom.series`.
 * Whatever way the study arrived, the job id is derived from the StudyInstanceUID, so the same study
 * reported twice (two pollers, a poll and an API call) is analysed once.
 */
const fhirRef = (type: string) => z.string().regex(new RegExp(`^${type}/[A-Za-z0-9\\-.]{1,64}$`), `must be ${type}/<id>`);

export const dicomUid = z.string().regex(/^[0-9]+(\.[0-9]+)*$/, 'must be a DICOM UID (digits and dots)').max(64);

const text = (max: number) => z.string().max(max).optional();

/** The study's patient and accession as the PACS has them (PS3.3 C.7.1.1, C.7.2.1). PHI: never logged. */
export const studyIdentity = z.object({
  patientId: text(64),
  issuerOfPatientId: text(64),
  patientName: text(324),
  birthDate: text(16),
  accessionNumber: text(64),
  accessionIssuer: text(1024),
});

/** One series as the search described it (src/dicom/source.ts SeriesCandidate). */
export const seriesCandidate = z.object({
  studyInstanceUid: dicomUid,
  seriesInstanceUid: dicomUid,
  modality: text(16),
  seriesDescription: text(256),
  seriesNumber: z.number().optional(),
  imageType: z.array(z.string().max(16)).max(16).optional(),
  sliceThicknessMm: z.number().optional(),
  instanceCount: z.number().int().nonnegative().optional(),
  frameCount: z.number().int().nonnegative().optional(),
  patientId: text(64),
  accessionNumber: text(64),
});

export const analysisJobData = z.object({
  studyInstanceUid: dicomUid,
  accessionNumber: z.string().max(64).optional(),
  /** The issuer the order gave its accession (ServiceRequest.identifier.system), compared with the study's. */
  accessionIssuer: z.string().max(1024).optional(),
  /** `Patient/123` in the FHIR server results are written to, when the trigger knows it. */
  patient: fhirRef('Patient').optional(),
  serviceRequest: fhirRef('ServiceRequest').optional(),
  imagingStudy: fhirRef('ImagingStudy').optional(),
  watchId: z.string().optional(),
  /** The study as the PACS described it in one search: whose it is and its series (the analysis chooses among them). */
  dicom: z.object({ identity: studyIdentity, series: z.array(seriesCandidate).max(1000) }).optional(),
  trigger: z.enum(['qido-poll', 'api', 'imagingstudy-notification', 'sandbox', 'backfill']),
  /** Follows the study through hook, poll, job, retrieval, analysis and write in the logs (src/util/log-context.ts). */
  correlationId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
});
export type AnalysisJobData = z.infer<typeof analysisJobData>;

export function analysisJobId(studyInstanceUid: string): string {
  // BullMQ custom ids must not contain ':' and must not be integers.
  return `study-${studyInstanceUid}`;
}

/** What a finished job records (no PHI: ids and the number). */
export interface AnalysisJobResult {
  observation: string;
  riskAssessment?: string;
  created: boolean;
  vbmdMgCm3: number | null;
  category: string;
  seriesInstanceUid?: string;
  /** What reached the PACS (src/dicom-output/pacs-step.ts): stored, already there, or failed, and what it replaced. */
  pacs?: PacsJobResult;
}
