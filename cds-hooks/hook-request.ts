import { z } from 'zod';
import { fhirBundle, fhirId, prefetchValue } from './fhir-shapes.js';

/**
 * The CDS Hooks 2.0 service request and feedback bodies (STANDARDS.md section 1; hook contexts from the hook
 * library STU1), validated at the edge. FHIR resources inside (draftOrders, prefetch) are checked as far as
 * this service reads them (fhir-shapes.ts); the rest passes through untouched. Every string is bounded:
 * ids, the accession and the fhirServer are stored with the watch and end up in job data and logs.
 */
export { fhirBundle } from './fhir-shapes.js';
export type { FhirBundleLike } from './fhir-shapes.js';

export const fhirAuthorization = z.object({
  access_token: z.string().min(1).max(16_384),
  token_type: z.string().regex(/^bearer$/i, 'must be "Bearer"'),
  expires_in: z.number().int().nonnegative(),
  scope: z.string().max(8192),
  subject: z.string().max(1024),
  patient: fhirId.optional(),
});
export type FhirAuthorization = z.infer<typeof fhirAuthorization>;

const baseRequest = z.object({
  hook: z.string().min(1).max(64),
  hookInstance: z.string().min(1).max(128),
  fhirServer: z.string().max(2048).url().optional(),
  fhirAuthorization: fhirAuthorization.optional(),
  /** A key the client did not satisfy is absent; "no data" is null (read) or an empty Bundle (search). */
  prefetch: z.record(z.string().max(64), prefetchValue).optional(),
  extension: z.unknown().optional(),
});

const patientContext = {
  userId: z.string().min(1).max(256),
  patientId: fhirId,
  encounterId: fhirId.optional(),
};

export const patientViewRequest = baseRequest.extend({
  hook: z.literal('patient-view'),
  context: z.looseObject(patientContext),
});
export type PatientViewRequest = z.infer<typeof patientViewRequest>;

export const orderSignRequest = baseRequest.extend({
  hook: z.literal('order-sign'),
  context: z.looseObject({ ...patientContext, draftOrders: fhirBundle }),
});
export type OrderSignRequest = z.infer<typeof orderSignRequest>;

export const orderSelectRequest = baseRequest.extend({
  hook: z.literal('order-select'),
  context: z.looseObject({ ...patientContext, selections: z.array(z.string().min(1).max(256)).max(200), draftOrders: fhirBundle }),
});
export type OrderSelectRequest = z.infer<typeof orderSelectRequest>;

/** fhirServer is REQUIRED when fhirAuthorization is present (CDS Hooks 2.0, "HTTP Request"). */
export function withFhirServerRule<T extends z.ZodType<{ fhirServer?: string; fhirAuthorization?: unknown }>>(schema: T) {
  return schema.refine((r) => r.fhirAuthorization === undefined || r.fhirServer !== undefined, {
    message: 'fhirServer is required when fhirAuthorization is present',
    path: ['fhirServer'],
  });
}

export const feedbackRequest = z.object({
  feedback: z
    .array(
      z.object({
        card: z.string().min(1).max(128),
        outcome: z.enum(['accepted', 'overridden']),
        acceptedSuggestions: z.array(z.object({ id: z.string().min(1).max(128) })).max(50).optional(),
        overrideReason: z
          .object({
            reason: z.object({ code: z.string().min(1).max(256), system: z.string().min(1).max(1024), display: z.string().max(1024).optional() }).optional(),
            userComment: z.string().max(4000).optional(),
          })
          .optional(),
        outcomeTimestamp: z.string().datetime({ offset: true }),
      }),
    )
    .min(1)
    .max(100),
});
export type FeedbackRequest = z.infer<typeof feedbackRequest>;
export type FeedbackItem = FeedbackRequest['feedback'][number];

/** One line naming each problem and where it is, for a 400 body. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}
