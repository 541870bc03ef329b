import { z } from 'zod';

/**
 * The CDS Hooks 2.0 service request and feedback bodies (STANDARDS.md section 1; hook contexts from the hook
 * library STU1), validated at the edge. FHIR resources inside (draftOrders, prefetch) are checked only as far
 * as the cards need; the rest passes through untouched.
 */
const fhirResource = z.looseObject({ resourceType: z.string().min(1) });

export const fhirBundle = z.looseObject({
  resourceType: z.literal('Bundle'),
  entry: z.array(z.looseObject({ resource: fhirResource.optional() })).optional(),
});
export type FhirBundleLike = z.infer<typeof fhirBundle>;

export const fhirAuthorization = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i, 'must be "Bearer"'),
  expires_in: z.number().int().nonnegative(),
  scope: z.string(),
  subject: z.string(),
  patient: z.string().optional(),
});
export type FhirAuthorization = z.infer<typeof fhirAuthorization>;

const baseRequest = z.object({
  hook: z.string().min(1),
  hookInstance: z.string().min(1),
  fhirServer: z.string().url().optional(),
  fhirAuthorization: fhirAuthorization.optional(),
  /** A key the client did not satisfy is absent; "no data" is null (read) or an empty Bundle (search). */
  prefetch: z.record(z.string(), fhirResource.nullable()).optional(),
  extension: z.unknown().optional(),
});

const patientContext = {
  userId: z.string().min(1),
  patientId: z.string().min(1),
  encounterId: z.string().min(1).optional(),
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
  context: z.looseObject({ ...patientContext, selections: z.array(z.string().min(1)), draftOrders: fhirBundle }),
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
        card: z.string().min(1),
        outcome: z.enum(['accepted', 'overridden']),
        acceptedSuggestions: z.array(z.object({ id: z.string().min(1) })).optional(),
        overrideReason: z
          .object({
            reason: z.object({ code: z.string().min(1), system: z.string().min(1), display: z.string().optional() }).optional(),
            userComment: z.string().max(4000).optional(),
          })
          .optional(),
        outcomeTimestamp: z.string().datetime({ offset: true }),
      }),
    )
    .min(1),
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
