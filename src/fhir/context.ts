import { z } from 'zod';
import type { Coding } from 'fhir/r4.js';

const reference = z
  .string()
  .regex(/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/, 'a relative reference such as Patient/123');

/**
 * What the FHIR mapping needs besides the report: whose result it is and what it answers. The report itself
 * carries no FHIR ids (the engine knows DICOM, not the EHR).
 */
export const analysisContext = z.object({
  /** `Patient/123`: the subject of every resource written. */
  patient: reference,
  /** `ServiceRequest/abc`: the imaging order, when the CDS watch or the caller knows it. */
  serviceRequest: reference.optional(),
  /** `ImagingStudy/xyz`: a literal reference when the EHR has the study as FHIR; the study is always also
   * referenced logically by its StudyInstanceUID. */
  imagingStudy: reference.optional(),
  /** FHIR instant the results are released; default now. */
  issued: z.iso.datetime({ offset: true }).optional(),
  /** Extra `meta.tag` codings on every resource (the sandbox marks demo data). */
  tags: z.array(z.custom<Coding>((v) => typeof v === 'object' && v !== null)).optional(),
});
export type AnalysisContext = z.infer<typeof analysisContext>;
