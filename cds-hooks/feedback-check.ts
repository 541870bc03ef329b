import { OVERRIDE_REASONS } from './card-text.js';
import type { CdsCard } from './card-types.js';
import type { FeedbackStore, IssuedCard, QuietEntry } from './feedback-store.js';
import type { FeedbackItem } from './hook-request.js';
import { DXA_ORDER_CODE, DXA_SUGGESTION_KIND } from './patient-view-card.js';

/**
 * Feedback is accepted only about cards this service issued (CDS Hooks 2.0: `card` is the card's uuid;
 * `acceptedSuggestions[].id` a suggestion uuid of that card), so a client cannot inflate the counts or
 * quiet a patient's alert with made-up ids. An override with one of the card's override reasons quiets that
 * patient's patient-view card for the configured period, until a newer result arrives.
 */
export const DEFAULT_OVERRIDE_QUIET_MS = 90 * 86_400_000;

/** What to remember of the cards just answered (empty cards list: nothing). */
export function issuedCardsOf(cards: readonly CdsCard[], serviceId: string, patientId: string, observationId: string | null, nowMs: number): IssuedCard[] {
  return cards
    .filter((c): c is CdsCard & { uuid: string } => typeof c.uuid === 'string')
    .map((c) => ({
      uuid: c.uuid,
      serviceId,
      patientId,
      suggestions: (c.suggestions ?? [])
        .filter((s): s is typeof s & { uuid: string } => typeof s.uuid === 'string')
        .map((s) => ({
          uuid: s.uuid,
          kind: s.actions?.some((a) => JSON.stringify(a.resource ?? {}).includes(`"${DXA_ORDER_CODE.code}"`)) ? DXA_SUGGESTION_KIND : 'other',
        })),
      observationId,
      issuedAtMs: nowMs,
    }));
}

export type FeedbackCheck = { ok: true; quiet: QuietEntry[] } | { ok: false; message: string };

/** Checks every item against the issued cards; all or nothing (one unknown uuid refuses the request). */
export async function checkFeedback(
  store: FeedbackStore,
  serviceId: string,
  items: readonly FeedbackItem[],
  nowMs: number,
  quietMs: number,
): Promise<FeedbackCheck> {
  const issued = await store.issued(
    items.map((i) => i.card),
    nowMs,
  );
  const quiet: QuietEntry[] = [];
  for (const [i, item] of items.entries()) {
    const card = issued.get(item.card);
    if (!card || card.serviceId !== serviceId) {
      return { ok: false, message: `feedback.${i}.card: ${item.card.slice(0, 64)} is not a card this service (${serviceId}) issued in the last 30 days` };
    }
    for (const [j, s] of (item.acceptedSuggestions ?? []).entries()) {
      if (!card.suggestions.some((x) => x.uuid === s.id)) {
        return { ok: false, message: `feedback.${i}.acceptedSuggestions.${j}.id: ${s.id.slice(0, 64)} is not a suggestion of card ${item.card.slice(0, 64)}` };
      }
    }
    const reason = item.overrideReason?.reason;
    if (reason && !OVERRIDE_REASONS.some((r) => r.system === reason.system && r.code === reason.code)) {
      return { ok: false, message: `feedback.${i}.overrideReason.reason: ${reason.code.slice(0, 64)} is not one of the card's override reasons` };
    }
    if (item.outcome === 'overridden' && reason && serviceId === card.serviceId) {
      quiet.push({ patientId: card.patientId, serviceId, untilMs: nowMs + quietMs, observationId: card.observationId, reason: reason.code });
    }
  }
  return { ok: true, quiet };
}
