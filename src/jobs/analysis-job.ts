import { z } from 'zod';
import type { PacsJobResult } from '../dicom-output/pacs-step.js';

/**
 * One analysis job = one study. Whatever way the study arrived (QIDO poll of a watched accession, the
 * analyze API, an ImagingStudy notification), the job id is derived from the StudyInstanceUID, so the same
 * study reported twice (two pollers, a poll and an API call) is analysed once.
 */
const fhirRef = (type: string) => z.string().regex(new RegExp(`^${type}/[A-Za-z0-9\\-.]{1,64}$`), `must be ${type}/<id>`);

export const dicomUid = z.string().regex(/^[0-9]+(\.[0-9]+)*$/, 'must be a DICOM UID (digits and dots)').max(64);

export const analysisJobData = z.object({
  studyInstanceUid: dicomUid,
  accessionNumber: z.string().max(64).optional(),
  /** `Patient/123` in the FHIR server results are written to, when the trigger knows it. */
  patient: fhirRef('Patient').optional(),
  serviceRequest: fhirRef('ServiceRequest').optional(),
  imagingStudy: fhirRef('ImagingStudy').optional(),
  watchId: z.string().optional(),
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
