import { z } from 'zod';
import { ACCESSION_IDENTIFIER_TYPE } from '../src/fhir/codes.js';

/**
 * The shape of the FHIR data a hook body carries, as far as this service reads it (draftOrders
 * ServiceRequests; prefetched Observations and RiskAssessments): every field the order and patient-view
 * code touches is typed here, so a badly shaped body is a 400 that names the field instead of a TypeError
 * (500) deep in the card code. Other fields and other resource types pass through untouched. Lengths are
 * bounded because ids and the accession are stored (watches) and end up in job data and FHIR references.
 */

/** FHIR R4 id (datatypes: [A-Za-z0-9\-\.]{1,64}). */
export const fhirId = z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, 'must be a FHIR id (letters, digits, - and ., at most 64)');
/** The accession number as stored and searched for (DICOM SH is 16 characters; 64 leaves room for issuers' formats). */
export const MAX_ACCESSION_CHARS = 64;

const shortText = z.string().max(1024);
const coding = z.looseObject({ system: shortText.optional(), code: z.string().max(256).optional(), display: shortText.optional() });
const codeableConcept = z.looseObject({ coding: z.array(coding).max(50).optional(), text: shortText.optional() });
const reference = z.looseObject({
  reference: shortText.optional(),
  identifier: z.looseObject({ system: shortText.optional(), value: shortText.optional() }).optional(),
});
const quantity = z.looseObject({ value: z.number().optional(), unit: shortText.optional(), code: shortText.optional(), system: shortText.optional() });
const dateTime = z.string().max(64);

const isAccessionType = (t: z.infer<typeof codeableConcept> | undefined): boolean =>
  (t?.coding ?? []).some((c) => c.system === ACCESSION_IDENTIFIER_TYPE.system && c.code === ACCESSION_IDENTIFIER_TYPE.code);

const identifier = z
  .looseObject({ system: shortText.optional(), value: shortText.optional(), type: codeableConcept.optional() })
  .refine((i) => !isAccessionType(i.type) || (i.value ?? '').length <= MAX_ACCESSION_CHARS, {
    message: `an accession number (identifier of type ACSN) must be at most ${MAX_ACCESSION_CHARS} characters`,
    path: ['value'],
  });

export const serviceRequestShape = z.looseObject({
  resourceType: z.literal('ServiceRequest'),
  id: fhirId.optional(),
  status: z.string().max(64).optional(),
  code: codeableConcept.optional(),
  identifier: z.array(identifier).max(50).optional(),
});

export const observationShape = z.looseObject({
  resourceType: z.literal('Observation'),
  id: fhirId.optional(),
  status: z.string().max(64).optional(),
  code: codeableConcept.optional(),
  method: codeableConcept.optional(),
  bodySite: codeableConcept.optional(),
  valueQuantity: quantity.optional(),
  effectiveDateTime: dateTime.optional(),
  effectivePeriod: z.looseObject({ start: dateTime.optional() }).optional(),
  issued: dateTime.optional(),
  derivedFrom: z.array(reference).max(100).optional(),
  partOf: z.array(reference).max(100).optional(),
  component: z
    .array(z.looseObject({ code: codeableConcept.optional(), valueQuantity: quantity.optional(), dataAbsentReason: codeableConcept.optional() }))
    .max(100)
    .optional(),
});

export const riskAssessmentShape = z.looseObject({
  resourceType: z.literal('RiskAssessment'),
  id: fhirId.optional(),
  status: z.string().max(64).optional(),
  occurrenceDateTime: dateTime.optional(),
  basis: z.array(reference).max(100).optional(),
  prediction: z
    .array(z.looseObject({ outcome: codeableConcept.optional(), qualitativeRisk: codeableConcept.optional(), probabilityDecimal: z.number().optional() }))
    .max(50)
    .optional(),
});

const SHAPES: Record<string, z.ZodType> = {
  ServiceRequest: serviceRequestShape,
  Observation: observationShape,
  RiskAssessment: riskAssessmentShape,
};

/** Any FHIR resource; the types this service reads are checked against their shape above. */
export const fhirResource = z.looseObject({ resourceType: z.string().min(1).max(64) }).superRefine((r, ctx) => {
  const shape = SHAPES[r.resourceType];
  if (!shape) return;
  const parsed = shape.safeParse(r);
  if (parsed.success) return;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
});

/** A Bundle whose entries are read (draftOrders, searchset prefetch). */
export const fhirBundle = z.looseObject({
  resourceType: z.literal('Bundle'),
  entry: z.array(z.looseObject({ resource: fhirResource.optional() })).max(1000).optional(),
});
export type FhirBundleLike = z.infer<typeof fhirBundle>;

/** A prefetch value: a Bundle (checked as above), another resource (e.g. an OperationOutcome), or null. */
export const prefetchValue = z
  .looseObject({ resourceType: z.string().min(1).max(64) })
  .superRefine((r, ctx) => {
    const parsed = (r.resourceType === 'Bundle' ? fhirBundle : fhirResource).safeParse(r);
    if (parsed.success) return;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  })
  .nullable();
