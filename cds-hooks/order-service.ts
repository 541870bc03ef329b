import { log } from '../src/util/log.js';
import type { CdsResponse } from './card-types.js';
import type { CdsHooksDeps } from './deps.js';
import { SERVICE_IDS } from './discovery.js';
import { issuedCardsOf } from './feedback-check.js';
import type { HookBody, HookCall } from './hook-call.js';
import { matchCtOrders, orderCards } from './order-card.js';
import type { MatchedCtOrder } from './order-card.js';
import { searchResources } from './prefetch.js';
import { readVbmdResults } from './vbmd-results.js';

/**
 * The order-select and order-sign services (vbmd-order-select, vbmd-order-sign): a card for each CT order in
 * the value set saying the scan's bone density will be measured, with the last result; order-sign also
 * leaves a watch for the study. The hook never waits for imaging or a queue: a watch is one local insert.
 */
export async function orderService(deps: CdsHooksDeps, body: HookBody, call: HookCall): Promise<CdsResponse> {
  const id = call.serviceId;
  const selections = id === SERVICE_IDS.orderSelect ? body.context.selections : undefined;
  const orders = matchCtOrders(body.context.draftOrders, deps.valueSet, selections);
  if (orders.length === 0) return { cards: [] };
  // The last result only enriches the card; when it cannot be had the card says so (no 412: the card's
  // message, that the scan will be measured, does not depend on it).
  const observations = await searchResources(body, 'vbmdObservations', call.def.prefetch.vbmdObservations!, call.fetchOpts);
  const latest = observations === undefined ? undefined : (readVbmdResults(observations)[0] ?? null);
  // Only a signed order is a promise that the scan will happen: order-select fires while the clinician is
  // still choosing, so it shows the card but leaves no watch behind.
  if (id === SERVICE_IDS.orderSign) await watchOrders(deps, body, orders);
  const cards = orderCards(orders, latest, { smartLaunchUrl: call.smartLaunchUrl() });
  await deps.feedback.recordIssued(issuedCardsOf(cards, id, body.context.patientId, latest?.observationId ?? null, Date.now()));
  return { cards };
}

async function watchOrders(deps: CdsHooksDeps, body: HookBody, orders: readonly MatchedCtOrder[]): Promise<void> {
  for (const o of orders) {
    try {
      await deps.watches.upsert({
        patientId: body.context.patientId,
        ...(o.serviceRequestId ? { serviceRequestId: o.serviceRequestId } : {}),
        ...(o.accessionNumber ? { accessionNumber: o.accessionNumber } : {}),
        ...(o.accessionSystem ? { accessionSystem: o.accessionSystem } : {}),
        ...(body.fhirServer ? { fhirServer: body.fhirServer } : {}),
        hook: body.hook,
        ttlMs: deps.watchTtlMs,
      });
    } catch (e) {
      // The card is still right; the study can still arrive through the analyze API or a notification.
      log.error({ err: (e as Error).message, hookInstance: body.hookInstance }, 'could not record the study watch');
    }
  }
}
