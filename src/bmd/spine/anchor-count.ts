import { VERTEBRA_LEVELS } from '../report.js';

/** Indices into VERTEBRA_LEVELS of the levels the counts name from or check against. */
export const T1 = VERTEBRA_LEVELS.indexOf('T1');
export const T12 = VERTEBRA_LEVELS.indexOf('T12');
export const T2 = T1 + 1;
export const T10 = T12 - 2;
export const L5 = VERTEBRA_LEVELS.indexOf('L5');

/**
 * Confidence of a count from one anchor alone at its own level (before the distance and gap discounts).
 * Below 0.8 where variant anatomy alone makes the count wrong often enough: 11 or 13 rib pairs move the
 * last rib (several % of people; Merks et al., 2005), a transitional lumbosacral vertebra the sacrum
 * (4-30%; Konin & Walz, AJNR 2010). The first rib is moved only by a cervical rib (< 1%).
 */
export const ONE_ANCHOR = { t1: 0.9, t12: 0.75, l5: 0.72 } as const;
/** A count weakened for a reason of its own: under this it gives way to a firmer count that disagrees. */
export const WEAK_RIB_COUNT = 0.7;
/**
 * A first-rib count below a piece that the scan's top edge cuts: it is right only when the scan starts inside
 * T1, and a scan that starts lower in the chest gives the same picture (the Philips chest CT cropped to start
 * inside any of T2-T7: every name wrong by the levels cut away). Alone it names levels as a guess, under 0.5
 * so that no value rests on it; with another anchor that agrees it is still a confirmation.
 */
export const CUT_TOP_RIB_COUNT = 0.45;

export type AnchorName = 't1' | 't12' | 'l5';
/** One anchor's count: the VERTEBRA_LEVELS index of level 0 (the caudal-most piece), index(k) = base - k. */
export interface AnchorCount {
  name: AnchorName;
  base: number;
  at: number;
  conf: number;
  /**
   * Weakened for a reason other than the scan's edge (an irregular or one-sided rib pattern, ribs that fit a
   * level up or down almost as well): such a count can be off in either direction.
   */
  doubt: boolean;
}
