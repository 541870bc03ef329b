import type { VertebraLevel } from '../report.js';
import { VERTEBRA_LEVELS } from '../report.js';
import { CUT_TOP_RIB_COUNT, L5, ONE_ANCHOR, T12, WEAK_RIB_COUNT, type AnchorCount } from './anchor-count.js';
import { boundaryConfirmed } from './confirmed-boundaries.js';
import type { LevelEvidence } from './level-evidence.js';
import { firstRibAnchor, lastRibAnchor, ribBearingLevels, weakenForMidThoraxWithoutRibs } from './rib-anchors.js';

export type { LevelEvidence } from './level-evidence.js';

/**
 * Naming the levels by counting from the anatomical anchors that are in view, as a reader does:
 * - T1 is the first rib-bearing vertebra (the level above it, C7, bears none),
 * - T12 the last (the level below it, L1, bears none); ribs articulate with T1-T12 only (Gray's Anatomy),
 * - L5 the last level above the sacrum.
 * Each anchor found gives one count; where several are found they must agree. Where they do not, the spine
 * has 11 or 13 rib pairs or a lumbosacral transitional vertebra (together ~10-20% of people: Nakajima et
 * al., Spine 2014; Carrino et al., Radiology 2011), which a count cannot settle: the labels are then uncertain.
 */

export interface LabelOutcome {
  /** Per level (caudal first, as given): its name, or null when not a named vertebra (sacrum, stub, beyond C1-L5). */
  names: (VertebraLevel | null)[];
  confidence: number[];
  anchors: { t1: number | null; t12: number | null; l5: number | null };
  warnings: string[];
}

/** Two or three anchors agreeing: the count is confirmed independently. */
const AGREEING_ANCHORS = 0.97;
/**
 * A weak first-rib count and a weak last-rib count agreeing. Each is weak because the scan's edge may hide
 * a rib (a T1 cut above its first rib, a T12 whose twelfth ribs cross below the scan), and those two errors
 * move the counts in opposite directions: for both to be wrong and still agree, 13 rib pairs would have to
 * meet a cut T1. So their agreement is surer than either (hard phantom 20000: C7-L1 with both edges close).
 * Only for those edge doubts: a last-rib count weak for a split or one-sided lowest pair can be off either way
 * (hard phantom 20019: it agreed, one level off, with the count from a T1 the scan cut).
 */
const WEAK_RIB_ENDS_AGREEING = 0.85;
/** Anchors disagreeing by a level: variant anatomy; the count is a choice, not a finding. */
const DISAGREEING_ANCHORS = 0.45;
/**
 * Two anchors agreeing against a third: the dissent is most often the variant itself (11 or 13 rib pairs,
 * a transitional vertebra) rather than a miscount, so the majority count is likely but not sure.
 */
const MAJORITY_OVER_DISSENT = 0.75;
/** Per level counted away from the anchor (a disc could be missed), and per inferred boundary crossed. */
const PER_LEVEL = 0.995;
const PER_INFERRED_BOUNDARY = 0.6;
/** Without any anchor the name is a placeholder, reported as unknown. */
export const NO_ANCHOR = 0.2;

/**
 * How well the ribs fit the levels they were given, against the same ribs one level up or down (mm of
 * traced-end distance to the levels' windows, ribs.ts). Under this, a rib count is not trusted on its own.
 */
export const RIB_MARGIN_MIN_MM = 10;


/** L5: the level right above the (most cranial) sacral piece. */
function sacralAnchor(ev: LevelEvidence[]): AnchorCount | null {
  let sac = -1;
  ev.forEach((e, k) => {
    if (e.sacral) sac = k;
  });
  const l5 = sac + 1;
  if (sac < 0 || l5 >= ev.length || ev[l5].sacral || ev[l5].stub) return null;
  return { name: 'l5', base: L5 + l5, at: l5, conf: ONE_ANCHOR.l5, doubt: false };
}

/** The count the labels follow, its confidence, and the anchors it rests on; null base without any anchor. */
function chooseCount(countsIn: AnchorCount[], warnings: string[]): { base: number | null; conf: number; anchorsAt: number[] } {
  const counts = [...countsIn];
  if (counts.length === 0) {
    warnings.push(
      'No anatomical anchor (the first or last rib-bearing vertebra, or the sacrum) is in the field of view: vertebral levels cannot be named and are reported as unknown.',
    );
    return { base: null, conf: NO_ANCHOR, anchorsAt: [] };
  }
  // A rib count whose ribs fit one level up or down almost as well is weak evidence: where a firm anchor
  // disagrees with it, the weak count is the likelier error (a traced rib end on a disc), not the anatomy.
  const firm = counts.filter((c) => c.conf > WEAK_RIB_COUNT);
  const weakDisagree = counts.filter((c) => c.conf <= WEAK_RIB_COUNT && firm.length > 0 && firm.every((f) => f.base !== c.base));
  if (weakDisagree.length > 0 && firm.length > 0 && majority(firm.map((c) => c.base)).count === firm.length) {
    warnings.push(
      `The rib count (${weakDisagree.map((c) => c.name.toUpperCase()).join(', ')}) is ambiguous by a level and disagrees with the ${firm.map((c) => c.name.toUpperCase()).join(' and ')} count, which the labels follow.`,
    );
    for (const w of weakDisagree) counts.splice(counts.indexOf(w), 1);
  }
  // A first-rib count below a level the scan cuts is off by as many levels as the scan starts below C7, where
  // the other counts' own errors (a twelfth rib out of view, 11 or 13 pairs, a transitional vertebra) are one
  // level: two or more levels from another count, with none agreeing, it is set aside (default phantom 1018,
  // T4-L1: a T4 under a cut T3 was taken for T1, three levels off a last-rib count weak only for the scan's
  // bottom edge). Only a cut top level takes the first-rib count down to CUT_TOP_RIB_COUNT.
  const cutTop = counts.find((c) => c.name === 't1' && c.conf <= CUT_TOP_RIB_COUNT);
  const alone = cutTop !== undefined && !counts.some((c) => c !== cutTop && c.base === cutTop.base);
  const far = alone ? counts.find((c) => Math.abs(c.base - cutTop.base) >= 2) : undefined;
  if (cutTop && far) {
    warnings.push(`The first-rib count, below a level the scan's top edge cuts, is ${Math.abs(far.base - cutTop.base)} levels off the ${far.name.toUpperCase()} count: the scan starts below C7, and that count is set aside.`);
    counts.splice(counts.indexOf(cutTop), 1);
  }
  const agreeing = majority(counts.map((c) => c.base));
  if (agreeing.count === counts.length) {
    // Several anchors agreeing confirm the count; a weak rib count agreeing adds less.
    const strong = counts.filter((c) => c.conf > WEAK_RIB_COUNT).length;
    // Only where each rib count is weak for its scan edge alone do their errors run in opposite directions.
    const bothRibEnds = counts.some((c) => c.name === 't1' && !c.doubt) && counts.some((c) => c.name === 't12' && !c.doubt);
    const conf =
      strong >= 2
        ? AGREEING_ANCHORS
        : counts.length >= 2
          ? Math.max(Math.max(...counts.map((c) => c.conf)) + 0.08, bothRibEnds ? WEAK_RIB_ENDS_AGREEING : 0)
          : counts[0].conf;
    return { base: agreeing.value, conf, anchorsAt: counts.map((c) => c.at) };
  }
  // Disagreement: keep the majority where there is one, else the rib count from the top (readers count down
  // from T1 when the top of the thorax is shown), else the last rib.
  const chosen =
    agreeing.count >= 2 ? counts.find((c) => c.base === agreeing.value)! : (counts.find((c) => c.name === 't1') ?? counts.find((c) => c.name === 't12')!);
  // Said at the chosen anchor's own level, which every count names (the lowest piece may lie below S1).
  const nameAt = (c: AnchorCount): string => VERTEBRA_LEVELS[c.base - chosen.at] ?? 'outside C1-S1';
  const sameAsChosen = counts.filter((c) => c.base === chosen.base).map((c) => c.name.toUpperCase());
  const said = [
    `the level the ${sameAsChosen.join(' and ')} anchor${sameAsChosen.length > 1 ? 's name' : ' names'} ${nameAt(chosen)}`,
    ...counts.filter((c) => c.base !== chosen.base).map((c) => `the ${c.name.toUpperCase()} anchor names ${nameAt(c)}`),
  ].join(', ');
  warnings.push(
    `The anatomical anchors disagree on the vertebral count (${said}): 11 or 13 rib pairs or a lumbosacral transitional vertebra. Labels follow the ${agreeing.count >= 2 ? 'majority' : chosen.name.toUpperCase()} count and are uncertain.`,
  );
  return {
    base: chosen.base,
    conf: agreeing.count >= 2 ? MAJORITY_OVER_DISSENT : DISAGREEING_ANCHORS,
    anchorsAt: counts.filter((c) => c.base === chosen.base).map((c) => c.at),
  };
}

/**
 * Confidence of level k's name: the count's confidence discounted from the nearest anchor, per level counted
 * and per inferred boundary crossed. Between two anchors that agree, the count of levels between them is
 * confirmed by that agreement itself.
 */
function levelConfidence(ev: LevelEvidence[], k: number, conf: number, anchorsAt: number[]): number {
  const lo = Math.min(...anchorsAt);
  const hi = Math.max(...anchorsAt);
  let best = anchorsAt.length >= 2 && k >= lo && k <= hi ? conf : 0;
  for (const a of anchorsAt) {
    let inferred = 0;
    for (let j = Math.min(k, a); j < Math.max(k, a); j++) {
      if ((ev[j].cranialInferred || ev[j + 1].caudalInferred) && !boundaryConfirmed(ev, j)) inferred++;
    }
    best = Math.max(best, conf * PER_LEVEL ** Math.abs(k - a) * PER_INFERRED_BOUNDARY ** inferred);
  }
  return best;
}

export function labelLevels(ev: LevelEvidence[], ribMarginMm = Infinity): LabelOutcome {
  const warnings: string[] = [];
  const ribbed = ribBearingLevels(ev, warnings);
  const ribless = ev.map((e, k) => !ribbed[k] && (e.bandLeft || e.bandRight) && e.whole && !e.sacral);
  const t12 = lastRibAnchor(ev, ribbed, ribless, warnings);
  const t1 = firstRibAnchor(ev, ribbed, ribless, warnings);
  for (const a of [t1, t12]) if (a) weakenForMidThoraxWithoutRibs(ev, ribbed, a, warnings);
  if (ribMarginMm < RIB_MARGIN_MIN_MM && (t1 || t12)) {
    for (const a of [t1, t12]) {
      if (!a) continue;
      a.conf = Math.min(a.conf, WEAK_RIB_COUNT);
      a.doubt = true;
    }
    warnings.push('The ribs fit their levels only a little better than one level up or down: the rib count alone is uncertain.');
  }
  const l5 = sacralAnchor(ev);
  const counts = [t1, t12, l5].filter((c): c is AnchorCount => c !== null && fitsColumn(ev, c, warnings));
  const { base, conf, anchorsAt } = chooseCount(counts, warnings);
  const placeholder = base === null ? placeholderBase(ev, ribbed) : base;
  const names: (VertebraLevel | null)[] = [];
  const confidence: number[] = [];
  ev.forEach((e, k) => {
    const idx = placeholder - k;
    const c = base === null ? NO_ANCHOR : levelConfidence(ev, k, conf, anchorsAt);
    names.push(!e.sacral && !e.stub && idx >= 0 && idx <= L5 ? VERTEBRA_LEVELS[idx] : null);
    confidence.push(Math.round(c * 100) / 100);
  });
  return { names, confidence, anchors: { t1: t1?.at ?? null, t12: t12?.at ?? null, l5: l5?.at ?? null }, warnings };
}

/**
 * Whether a count leaves the column's pieces inside C1-L5, give or take two (a sixth lumbar or transitional
 * vertebra, a body split in two: hard phantom 20054, whose right last-rib count puts two pieces below L5). A count
 * that puts more whole pieces below L5 or above C1 misreads its anchor: the bodies would go unreported as "beyond
 * C1-L5" (AMOS 0336 in a heart-centred field: a rib pair on T4 read as the twelfth put "L5" on T8, and the eleven
 * bodies below it were dropped). It is set aside, with a warning.
 */
const OUTSIDE_C1_L5_MAX = 2;

function fitsColumn(ev: LevelEvidence[], count: AnchorCount, warnings: string[]): boolean {
  const outside = ev.filter((e, k) => e.whole && !e.stub && !e.sacral && (count.base - k > L5 || count.base - k < 0)).length;
  if (outside <= OUTSIDE_C1_L5_MAX) return true;
  warnings.push(`The ${count.name.toUpperCase()} count would put ${outside} whole bodies outside C1-L5, so its anchor is misread: it is set aside.`);
  return false;
}

/**
 * Without an anchor the names are placeholders, reported with the uncertainty: the caudal-most
 * rib-bearing-looking level as T12, moved up where that would leave a measurable level below L5 without a name
 * (every body found is still reported, as an unknown level, rather than silently dropped).
 */
function placeholderBase(ev: LevelEvidence[], ribbed: boolean[]): number {
  const lowest = Math.max(0, ribbed.indexOf(true));
  const firstBody = ev.findIndex((e) => !e.sacral && !e.stub);
  return firstBody < 0 ? T12 + lowest : Math.min(T12 + lowest, L5 + firstBody);
}

function majority(values: number[]): { value: number; count: number } {
  let best = { value: values[0], count: 0 };
  for (const v of values) {
    const c = values.filter((x) => x === v).length;
    if (c > best.count) best = { value: v, count: c };
  }
  return best;
}
