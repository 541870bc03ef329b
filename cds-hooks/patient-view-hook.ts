import { readFractureFindings } from '../src/fhir/finding-reader.js';
import type { TherapyMatcher } from '../src/population/therapy-value-set.js';
import { compileTherapyValueSet, defaultTherapyValueSet } from '../src/population/therapy-value-set.js';
import { readCareContext } from './care-context.js';
import type { CdsResponse } from './card-types.js';
import { issuedCardsOf } from './feedback-check.js';
import type { FeedbackStore } from './feedback-store.js';
import { patientViewCards } from './patient-view-card.js';
import { readOsteoporosisRisk, readVbmdResults } from './vbmd-results.js';

/**
 * The patient-view service from data to answer: the results (a 412 when they cannot be had), then, only when
 * there is a result, the extras (risk, fractures, care in place; each optional: a missing one is said in the
 * card, never a 412), the quiet period an override started, the card, and the record of the card issued so
 * its feedback can be checked. `fetchKey` answers one prefetch key (prefetch.ts searchResources).
 */
export type FetchKey = (key: string) => Promise<unknown[] | undefined>;

export interface PatientViewHookOptions {
  serviceId: string;
  patientId: string;
  smartLaunchUrl: string;
  declinePctPerYear: number;
  feedback: FeedbackStore;
  /** Bone-protective therapy value set (the cohort's); default the built-in one. */
  therapyMatcher?: TherapyMatcher;
  nowMs?: number;
}

let defaultMatcher: TherapyMatcher | undefined;

export async function patientViewHook(fetchKey: FetchKey, o: PatientViewHookOptions): Promise<CdsResponse | 'precondition-failed'> {
  const observations = await fetchKey('vbmdObservations');
  if (observations === undefined) return 'precondition-failed';
  const results = readVbmdResults(observations);
  if (results.length === 0) return { cards: [] };
  const nowMs = o.nowMs ?? Date.now();
  const latestId = results[0]!.observationId;
  const quiet = await o.feedback.quietFor(o.serviceId, o.patientId, nowMs);
  // Quiet until it ends or a newer result arrives (the override was about the result it saw).
  if (quiet && (quiet.observationId === null || quiet.observationId === latestId)) return { cards: [] };
  const [risks, fractures, medReq, medStmt, dxaObs, dxaProc, dxaOrders] = await Promise.all(
    ['riskAssessments', 'vbmdFractures', 'medicationRequests', 'medicationStatements', 'dxaObservations', 'dxaProcedures', 'dxaOrders'].map(fetchKey),
  );
  const matcher = o.therapyMatcher ?? (defaultMatcher ??= compileTherapyValueSet(defaultTherapyValueSet()));
  const care = readCareContext({ medications: [medReq, medStmt], dxaResults: [dxaObs, dxaProc], dxaOrders }, matcher, nowMs);
  const cards = patientViewCards(
    {
      results,
      risk: readOsteoporosisRisk(risks ?? [], latestId),
      fractures: readFractureFindings(fractures ?? []).filter((f) => f.patient === null || f.patient === o.patientId),
      care,
    },
    { patientId: o.patientId, declinePctPerYear: o.declinePctPerYear, smartLaunchUrl: o.smartLaunchUrl },
  );
  await o.feedback.recordIssued(issuedCardsOf(cards, o.serviceId, o.patientId, latestId, nowMs));
  return { cards };
}
