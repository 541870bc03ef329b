import type { Reference } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { ACCESSION_IDENTIFIER_TYPE, DICOM_UID_SYSTEM } from './codes.js';
import type { AnalysisContext } from './context.js';

/**
 * The ImagingStudy the result comes from. Always a logical reference by StudyInstanceUID (`urn:dicom:uid`,
 * value `urn:oid:<uid>` as R4 ImagingStudy.identifier does), because the EHR's FHIR server may not hold the
 * study as a resource at all; plus the literal reference when the caller knows it. A conditional reference
 * (`ImagingStudy?identifier=...`) would make the whole transaction fail on servers without the study.
 */
export function imagingStudyReference(report: VbmdReport, ctx: AnalysisContext): Reference | undefined {
  const uid = report.input.studyInstanceUid;
  if (!uid && !ctx.imagingStudy) return undefined;
  return {
    ...(ctx.imagingStudy ? { reference: ctx.imagingStudy } : {}),
    type: 'ImagingStudy',
    ...(uid ? { identifier: { system: DICOM_UID_SYSTEM, value: `urn:oid:${uid}` } } : {}),
    display: uid ? `CT study ${uid}` : 'CT study',
  };
}

/** The order: literal when known, else logical by accession number (as the DICOM SR -> FHIR IG does). */
export function serviceRequestReference(report: VbmdReport, ctx: AnalysisContext): Reference | undefined {
  if (ctx.serviceRequest) return { reference: ctx.serviceRequest, type: 'ServiceRequest' };
  const acc = report.input.accessionNumber;
  if (!acc) return undefined;
  return {
    type: 'ServiceRequest',
    identifier: { type: { coding: [{ ...ACCESSION_IDENTIFIER_TYPE }] }, value: acc },
  };
}

export function patientReference(ctx: AnalysisContext): Reference {
  return { reference: ctx.patient, type: 'Patient' };
}
