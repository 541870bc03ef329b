import type { VertebraLevel } from '../report.js';
import { VERTEBRA_LEVELS } from '../report.js';
import { boundaryConfirmed } from './confirmed-boundaries.js';

/**
 * Naming the levels by counting from the anatomical anchors that are in view, as a reader does:
 * - T1 is the first rib-bearing vertebra (the level above it, C7, bears none),
 * - T12 the last (the level below it, L1, bears none); ribs articulate with T1-T12 only (Gray's Anatomy),
 * - L5 the last level above the sacrum.
 * Each anchor found gives one count; where several are found they must agree. Where they do not, the spine
 * has 11 or 13 rib pairs or a lumbosacral transitional vertebra (together ~10-20% of people: Nakajima et
 * al., Spine 2014; Carrino et al., Radiology 2011), which a count cannot settle: the labels are then uncertain.
 */
export interface LevelEvidence {
  /** Rib heads traced to this level, per side. */
  ribLeft: boolean;
  ribRight: boolean;
  /** The lateral rib band beside this level lies inside the scan, per side ("no rib" then means no rib). */
  bandLeft: boolean;
  bandRight: boolean;
  /**
   * A short rib crosses the inner band (near the spine only) within this level, apart from the lateral
   * band's ribs: what a first rib that curves forward early looks like. Used only just above those ribs.
   */
  shortRibLeft?: boolean;
  shortRibRight?: boolean;
  /**
   * The band below this level, where its rib would cross if it descends steeply as a twelfth rib does, is in
   * view too (false at the bottom edge of a scan): without it a rib-less look may be a twelfth rib cut off.
   */
  ribDescentInView?: boolean;
  /**
   * A rib traced to within this level was given to no level: one rib per level and side leaves it over, as
   * when a disc is missed and two levels read as one (hard phantom 20013: T7 and T8 shared two pieces with
   * T6, and T7's ribs were left over).
   */
  unassignedRib?: boolean;
  /** A whole level's length over the column's trend (1: as its neighbours); NaN for a piece cut by the scan. */
  lengthOverTrend?: number;
  /**
   * This level and the next one up each hold their own transverse process pair, a level apart
   * (transverse-processes.ts): the boundary between them parts two vertebrae, whether its disc shows or not.
   */
  cranialPartedByProcesses?: boolean;
  /** Disc at both ends (a whole level); for an open end piece, whether it holds most of a body. */
  whole: boolean;
  /** A boundary of this level was inferred across a run with no visible disc. */
  caudalInferred: boolean;
  cranialInferred: boolean;
  /** This piece is the sacrum (below the last lumbar disc, with alae). */
  sacral: boolean;
  /** Too little of a body to name (an endplate and disc at the scan edge). */
  stub: boolean;
  /**
   * Cut by the scan edge with less than a whole level in view: too little to show that it bears no rib. A rib
   * crosses the band at the top of its own level or above it, so most of a level can be in view without its
   * rib (the first rib leaves the top of T1; AMOS 0336 cropped through T9: the cut T9 read as a rib-less "C7",
   * and a firm first-rib count put "T1" on T10).
   */
  partial?: boolean;
}

export interface LabelOutcome {
  /** Per level (caudal first, as given): its name, or null when not a named vertebra (sacrum, stub, beyond C1-L5). */
  names: (VertebraLevel | null)[];
  confidence: number[];
  anchors: { t1: number | null; t12: number | null; l5: number | null };
  warnings: string[];
}

const T1 = VERTEBRA_LEVELS.indexOf('T1');
const T12 = VERTEBRA_LEVELS.indexOf('T12');
const T2 = T1 + 1;
const T10 = T12 - 2;
const L5 = VERTEBRA_LEVELS.indexOf('L5');

/**
 * Confidence of a count from one anchor alone at its own level (before the distance and gap discounts).
 * Below 0.8 where variant anatomy alone makes the count wrong often enough: 11 or 13 rib pairs move the
 * last rib (several % of people; Merks et al., 2005), a transitional lumbosacral vertebra the sacrum
 * (4-30%; Konin & Walz, AJNR 2010). The first rib is moved only by a cervical rib (< 1%).
 */
const ONE_ANCHOR = { t1: 0.9, t12: 0.75, l5: 0.72 } as const;
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
const WEAK_RIB_COUNT = 0.7;
/**
 * A first-rib count below a piece that the scan's top edge cuts: it is right only when the scan starts inside
 * T1, and a scan that starts lower in the chest gives the same picture (the Philips chest CT cropped to start
 * inside any of T2-T7: every name wrong by the levels cut away). Alone it names levels as a guess, under 0.5
 * so that no value rests on it; with another anchor that agrees it is still a confirmation.
 */
const CUT_TOP_RIB_COUNT = 0.45;

type AnchorName = 't1' | 't12' | 'l5';
/** One anchor's count: the VERTEBRA_LEVELS index of level 0 (the caudal-most piece), index(k) = base - k. */
interface AnchorCount {
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

const RIB_LIKE_SET_ASIDE = 'Rib-like bone below a rib-less level under the thorax was not counted as a rib (an iliac crest, a kidney or a transverse process).';

/**
 * Whether each level bears ribs. Ribs run without a break from T1 to T12 (a lumbar rib occurs on L1 only):
 * the longest run of rib-bearing levels (a single missed level allowed inside it, not at its caudal end) is
 * the thorax, and rib-like bone in a run below it, past two or more rib-less levels, is an iliac crest, a
 * kidney or a transverse process, and is set aside. Runs above it are kept: there a missed rib or two is the
 * likelier story (the scapulae and arms crowd the upper ribs), and the first-rib anchor asks for ribs below it
 * anyway.
 */
function ribBearingLevels(ev: LevelEvidence[], warnings: string[]): boolean[] {
  const ribbed = ev.map((e) => e.ribLeft || e.ribRight);
  const runs: { from: number; to: number; count: number }[] = [];
  for (let k = 0; k < ev.length; k++) {
    if (!ribbed[k]) continue;
    const last = runs[runs.length - 1];
    if (last && k - last.to <= 2) {
      last.to = k;
      last.count++;
    } else runs.push({ from: k, to: k, count: 1 });
  }
  // A one-sided "rib" at the caudal end of a run, past a rib-less level, is a kidney (renal cortex under
  // contrast lies just where the ribs cross the band), an iliac crest or a transverse process: the twelfth
  // rib does not skip the eleventh. It is set aside before the runs are compared.
  let dropped = false;
  for (const r of runs) {
    const k = r.from;
    if (r.count >= 2 && !ribbed[k + 1] && !(ev[k].ribLeft && ev[k].ribRight) && ev[k + 1].whole && (ev[k + 1].bandLeft || ev[k + 1].bandRight)) {
      ribbed[k] = false;
      r.from = k + 2;
      r.count--;
      dropped = true;
    }
  }
  if (runs.length < 2) {
    if (dropped) warnings.push(RIB_LIKE_SET_ASIDE);
    return withShortFirstRib(ev, ribbed);
  }
  // On a tie the most cranial run: ribs are cranial, an iliac crest or kidney caudal.
  const main = runs.reduce((a, r) => (r.count >= a.count ? r : a));
  for (const r of runs) {
    if (r.to >= main.from) continue;
    for (let k = r.from; k <= r.to; k++) ribbed[k] = false;
    dropped = true;
  }
  if (dropped) warnings.push(RIB_LIKE_SET_ASIDE);
  return withShortFirstRib(ev, ribbed);
}

/**
 * The level above the most cranial rib-bearing one bears a rib when a short rib crosses the inner band there (both
 * sides, or the side whose lateral band is in view), and so on upwards. A first rib curving forward before the
 * lateral band left T1 rib-less and T2 named "T1" (AMOS 0336); with one band cut by the field, T2's rib can miss
 * the other too (Philips chest CT, 200 mm field 40 mm right of the spine: every name one level off at 0.9).
 */
function withShortFirstRib(ev: LevelEvidence[], ribbed: boolean[]): boolean[] {
  for (let top = ribbed.lastIndexOf(true); top >= 0 && top + 1 < ev.length; top++) {
    const above = ev[top + 1];
    if (above.stub) break;
    const left = above.shortRibLeft === true;
    const right = above.shortRibRight === true;
    if (!(above.bandLeft && above.bandRight ? left && right : (above.bandLeft && left) || (above.bandRight && right))) break;
    ribbed[top + 1] = true;
  }
  return ribbed;
}

/**
 * Whether the levels next to an anchor level, on the side where the ribs continue (dir +1: cranial, for
 * T12; -1: caudal, for T1), bear ribs as they must: one of the next two levels in view (whole or cut by the
 * scan edge, not a stub), unless the column ends there or their rib band is out of view.
 */
function ribsAlongside(ev: LevelEvidence[], ribbed: boolean[], at: number, dir: 1 | -1): boolean {
  const next = [at + dir, at + 2 * dir].filter((k) => k >= 0 && k < ev.length && !ev[k].stub && !ev[k].sacral && (ev[k].bandLeft || ev[k].bandRight));
  return next.length === 0 || next.some((k) => ribbed[k]);
}

/** T12: the most caudal rib-bearing level, with a rib-less whole level right below it. */
function lastRibAnchor(ev: LevelEvidence[], ribbed: boolean[], ribless: boolean[], warnings: string[]): AnchorCount | null {
  const n = ev.length;
  const t12 = ribbed.indexOf(true);
  if (!(t12 > 0 && ribless[t12 - 1])) return null;
  // T11 and T10 bear ribs too: a lone "rib" with rib-less levels above it (an iliac crest) is no anchor.
  if (!ribsAlongside(ev, ribbed, t12, 1)) return null;
  let conf: number = ONE_ANCHOR.t12;
  const both = (k: number): boolean => ev[k].ribLeft && ev[k].ribRight;
  const onlyLeft = (k: number): boolean => ev[k].ribLeft && !ev[k].ribRight;
  const onlyRight = (k: number): boolean => ev[k].ribRight && !ev[k].ribLeft;
  // The lowest pair split over two levels (one side's rib here, the other side's only on the level above):
  // either a steep 12th rib traced low on one side, or the 11th and 12th each seen on one side only.
  if (t12 + 1 < n && ((onlyLeft(t12) && onlyRight(t12 + 1)) || (onlyRight(t12) && onlyLeft(t12 + 1)))) {
    conf = 0.6;
    warnings.push('The lowest ribs are seen on one side each on two neighbouring levels: the last-rib count is uncertain.');
  }
  // A rib on one side only at the bottom, below a level with ribs on both: a kidney, a transverse process
  // or a short 12th rib traced on one side; less sure.
  if (!both(t12) && t12 + 1 < n && both(t12 + 1)) conf = Math.min(conf, 0.6);
  // One-sided evidence on both levels (a small field of view, a missed rib): less sure.
  if (!both(t12) && !(ev[t12 - 1].bandLeft && ev[t12 - 1].bandRight)) conf = Math.min(conf, 0.7);
  // A rib-less level between rib-bearing ones just above: a faint rib missed, or this "rib" is not one.
  if (t12 + 2 < n && !ribbed[t12 + 1] && ribless[t12 + 1] && ribbed[t12 + 2]) {
    conf = 0.6;
    warnings.push('The rib pattern at the thoracolumbar junction is irregular (a rib-bearing level below a rib-less one): the last-rib count is uncertain.');
  }
  const doubt = conf < ONE_ANCHOR.t12;
  // The "L1" below ends at the bottom edge of the scan, above where a twelfth rib would cross the band: it
  // may be T12 with its ribs out of view (hard phantom 20051), so the count is weak, as for the first rib.
  if (ev[t12 - 1].ribDescentInView === false) {
    conf = Math.min(conf, WEAK_RIB_COUNT);
    warnings.push('The level below the last rib-bearing one ends at the bottom edge of the scan, where a twelfth rib would cross the rib band out of view: the last-rib count is uncertain.');
  }
  return { name: 't12', base: T12 + t12, at: t12, conf, doubt };
}

/**
 * T1: the most cranial rib-bearing level, with a rib-less level right above it (C7). When that level is cut
 * short by the scan's edge (a stub or less than a whole level), the count is weak: it may be T1 itself.
 */
function firstRibAnchor(ev: LevelEvidence[], ribbedIn: boolean[], ribless: boolean[], warnings: string[]): AnchorCount | null {
  // A stub at the top edge is too little of a level to show a first rib of its own: a rib given to it is the
  // first rib of the level below traced high, or a clavicle (hard phantom 21010: T1's ribs on a 6 mm C7 stub
  // hid the count). For the last-rib count a stub keeps its rib: a T12 that the scan's top edge cuts may show
  // one (the TotalSegmentator example, tilted).
  const ribbed = ribbedIn.map((r, k) => r && !ev[k].stub);
  const t1 = ribbed.lastIndexOf(true);
  const above = ev[t1 + 1];
  const cut = above !== undefined && (above.partial === true || above.stub);
  // A whole level above with its rib band out of view may be T1 itself; a cut one is a weak count either way.
  if (t1 < 0 || !above || ribbed[t1 + 1] || !(cut || above.bandLeft || above.bandRight)) return null;
  // T2 and T3 bear ribs too: a lone "rib" with rib-less levels below it (a clavicle, an iliac crest) is no anchor.
  if (!ribsAlongside(ev, ribbed, t1, -1)) return null;
  // Nor is a "rib" on the column's lowest level, with nothing below to show the thorax goes on (hard phantom
  // 21020, an abdomen CT: bone beside the sacrum read as a rib named the sacrum "T1" at 0.9, and L5-T12 C7-C2).
  if (!ev.slice(0, t1).some((e) => !e.stub && !e.sacral)) return null;
  let conf: number = ONE_ANCHOR.t1;
  if (t1 - 2 >= 0 && !ribbed[t1 - 1] && ribless[t1 - 1] && ribbed[t1 - 2]) {
    conf = 0.6;
    warnings.push('The rib pattern at the top of the thorax is irregular (a rib-less level between rib-bearing ones): the first-rib count is uncertain.');
  }
  const doubt = conf < ONE_ANCHOR.t1;
  // The "C7" above is a piece cut by the scan's top edge: it may be T1 with its first rib out of view, so the
  // count is weak (hard phantom 20036: the first-rib count fell one level low where the scan cut T1).
  if (cut) {
    conf = Math.min(conf, CUT_TOP_RIB_COUNT);
    warnings.push('The level above the first rib-bearing one is cut by the edge of the scan, so it may bear a rib out of view: the first-rib count is uncertain.');
  }
  return { name: 't1', base: T1 + t1, at: t1, conf, doubt };
}

/**
 * More than this many levels that a rib count names T2-T10 without a rib on either side (whole, rib band in
 * view on both) make the count weak. T2-T10 bear ribs in everyone (rib-count variants sit at its ends: a
 * cervical rib, 11 or 13 pairs), so the ribs were missed or the count put the thorax in the wrong place (hard
 * phantom 22007, an abdomen CT: the track left the spine above T11, T11's ribs read as the first pair, four
 * rib-less lumbar levels named T3-T6, "T1" at 0.9). One is allowed: the scapulae or a small field hide a rib.
 */
const MID_THORAX_RIBLESS_MAX = 1;

function weakenForMidThoraxWithoutRibs(ev: LevelEvidence[], ribbed: boolean[], count: AnchorCount, warnings: string[]): void {
  const missing = ev.filter((e, k) => {
    const idx = count.base - k;
    return idx >= T2 && idx <= T10 && !ribbed[k] && e.whole && !e.stub && !e.sacral && e.bandLeft && e.bandRight;
  }).length;
  if (missing <= MID_THORAX_RIBLESS_MAX) return;
  count.conf = Math.min(count.conf, WEAK_RIB_COUNT);
  count.doubt = true;
  warnings.push(
    `${missing} levels that the ${count.name.toUpperCase()} count names T2-T10 show no rib although their rib band is in view: ribs were missed or the count is off, so it is uncertain.`,
  );
}

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
  const { base, conf, anchorsAt } = chooseCount([t1, t12, l5].filter((c): c is AnchorCount => c !== null), warnings);
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
