import type { Request } from 'express';
import type { NewWatch } from '../src/jobs/watches.js';
import type { TherapyMatcher } from '../src/population/therapy-value-set.js';
import type { ClientJwtVerifier } from './client-auth.js';
import type { CtValueSet } from './ct-value-set.js';
import type { FeedbackStore } from './feedback-store.js';

/** What the CDS Hooks router (router.ts) and its services are built from. */
export interface CdsHooksDeps {
  verifier: ClientJwtVerifier;
  /** The service's public base URL as clients call it (JWT `aud` and card links; never the Host header). */
  publicBaseUrl: string;
  valueSet: CtValueSet;
  declinePctPerYear: number;
  /** Default `${base}/smart/launch.html`. */
  smartLaunchUrl?: string;
  watches: { upsert(w: NewWatch): Promise<unknown> };
  watchTtlMs: number;
  feedback: FeedbackStore;
  fhirTimeoutMs?: number;
  /** Per trusted client (iss): the FHIR base URLs it may name as fhirServer (CDS_CLIENTS fhir_servers). */
  clientFhirServers?: ReadonlyMap<string, readonly string[]>;
  /** Allow fetching from an http (non-TLS, non-loopback) fhirServer with the client's token. */
  allowInsecureHttp?: boolean;
  /** Who may read `GET /api/cds/feedback-counts` (operators); the route is absent without it. */
  opsAuthorize?: (req: Request) => Promise<boolean>;
  /** How long an override with a reason quiets that patient's patient-view card (CDS_OVERRIDE_QUIET_DAYS). */
  overrideQuietMs?: number;
  /** Bone-protective therapy value set (the cohort's, COHORT_THERAPY_VALUE_SET_FILE); default built in. */
  therapyMatcher?: TherapyMatcher;
}
