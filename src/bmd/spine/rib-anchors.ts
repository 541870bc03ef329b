import { CUT_TOP_RIB_COUNT, ONE_ANCHOR, T1, T10, T12, T2, WEAK_RIB_COUNT, type AnchorCount } from './anchor-count.js';
import type { LevelEvidence } from './level-evidence.js';

/**
 * The two rib counts: T1 is the first rib-bearing vertebra, T12 the last (ribs articulate with T1-T12 only:
 * Gray's Anatomy). Which levels bear ribs, and how far each count can be trusted from what the scan shows.
 */

const RIB_LIKE_SET_ASIDE = 'Rib-like bone below a rib-less level under the thorax was not counted as a rib (an iliac crest, a kidney or a transverse process).';

/**
 * Whether each level bears ribs. Ribs run without a break from T1 to T12 (a lumbar rib occurs on L1 only):
 * the longest run of rib-bearing levels (a single missed level allowed inside it, not at its caudal end) is
 * the thorax, and rib-like bone in a run below it, past two or more rib-less levels, is an iliac crest, a
 * kidney or a transverse process, and is set aside. Runs above it are kept: there a missed rib or two is the
 * likelier story (the scapulae and arms crowd the upper ribs), and the first-rib anchor asks for ribs below it
 * anyway.
 */
export function ribBearingLevels(ev: LevelEvidence[], warnings: string[]): boolean[] {
  const ribbed = withShortRibsBetweenPairs(ev, ev.map((e) => e.ribLeft || e.ribRight));
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
    return withShortLastRib(ev, withShortFirstRib(ev, ribbed), warnings);
  }
  // On a tie the most cranial run: ribs are cranial, an iliac crest or kidney caudal.
  const main = runs.reduce((a, r) => (r.count >= a.count ? r : a));
  for (const r of runs) {
    if (r.to >= main.from) continue;
    for (let k = r.from; k <= r.to; k++) ribbed[k] = false;
    dropped = true;
  }
  if (dropped) warnings.push(RIB_LIKE_SET_ASIDE);
  return withShortLastRib(ev, withShortFirstRib(ev, ribbed), warnings);
}

/**
 * A whole level whose ribs the lateral band missed but whose rib necks cross the inner band (short ribs, on
 * both sides, or on the one side in view) bears ribs when rib pairs lie within two levels above and below it:
 * between two thoracic levels every level is thoracic, and near the top of the chest the scapulae and thick
 * slices hide ribs where they cross the band (hard phantom 22036, a chest CT at 3-5 mm: T2 and T3 showed only
 * their necks, T1's ribs stood apart from the thorax below and were taken for a clavicle, so no level was
 * named). Pairs on both sides are asked for, so a kidney or an iliac crest under a lumbar level's transverse
 * processes (which also cross the inner band) does not join the thorax.
 */
function withShortRibsBetweenPairs(ev: LevelEvidence[], ribbedIn: boolean[]): boolean[] {
  const pair = (k: number): boolean => k >= 0 && k < ev.length && ev[k].ribLeft && ev[k].ribRight;
  return ribbedIn.map((r, k) => {
    const e = ev[k];
    if (r || !e.whole || e.sacral) return r;
    return shortRibsInView(e) && (pair(k - 1) || pair(k - 2)) && (pair(k + 1) || pair(k + 2));
  });
}

/** Rib necks cross the inner band on every side whose lateral band is in view (one side at least). */
function shortRibsInView(e: LevelEvidence): boolean {
  return (e.bandLeft || e.bandRight) && (!e.bandLeft || e.shortRibLeft === true) && (!e.bandRight || e.shortRibRight === true);
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
    if (!shortRibsInView(above)) break;
    ribbed[top + 1] = true;
  }
  return ribbed;
}

/**
 * The level right below the lowest rib pair bears ribs when short ribs cross the inner band there on both sides (or
 * on the side whose band is in view) and the lateral band shows none: a twelfth rib short enough to end before the
 * lateral band, as it often is (hard phantoms 22000 and 22013: T12's ribs ended short of the band, T11 was taken
 * for T12 and every name was a level off). Only one level, right under a pair on both sides, and only with nothing
 * rib-like further down: where a kidney under contrast or an iliac crest crosses the band below, the "necks" can be
 * a transverse process beside it (the between-pairs rule's kidney case in test/bmd/spine-levels.test.ts).
 */
function withShortLastRib(ev: LevelEvidence[], ribbed: boolean[], warnings: string[]): boolean[] {
  const last = ribbed.indexOf(true);
  if (last < 1 || !(ev[last].ribLeft && ev[last].ribRight)) return ribbed;
  if (ev.slice(0, last - 1).some((e) => e.ribLeft || e.ribRight)) return ribbed;
  const below = ev[last - 1];
  if (!below.whole || below.sacral || below.ribLeft || below.ribRight) return ribbed;
  if (!shortRibsInView(below)) return ribbed;
  warnings.push('The lowest ribs are short (they end before the rib band): the last-rib count rests on them.');
  return ribbed.map((r, k) => r || k === last - 1);
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
export function lastRibAnchor(ev: LevelEvidence[], ribbed: boolean[], ribless: boolean[], warnings: string[]): AnchorCount | null {
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
 * Whether a field of view that cuts the rib band's back (a small field centred on the heart) still shows the band
 * beside `level` at least as deep as beside `ribbed`, on a side where `ribbed`'s rib was traced: a rib of `level`
 * would then show too, so its "no rib" counts (hard phantom 20056, a 176 mm field: T1's ribs traced 41 mm behind
 * the body, C7's band seen to 44 mm and rib-less, yet C7 was taken for a possible T1 and no level was named).
 */
function bandSeenAsDeep(level: LevelEvidence, ribbed: LevelEvidence): boolean {
  const deep = (a: number | undefined, b: number | undefined): boolean => a !== undefined && b !== undefined && b >= 0 && a >= b;
  return (ribbed.ribLeft && deep(level.bandDepthLeftMm, ribbed.bandDepthLeftMm)) || (ribbed.ribRight && deep(level.bandDepthRightMm, ribbed.bandDepthRightMm));
}

/**
 * T1: the most cranial rib-bearing level, with a rib-less level right above it (C7). When that level is cut
 * short by the scan's edge (a stub or less than a whole level), the count is weak: it may be T1 itself.
 */
export function firstRibAnchor(ev: LevelEvidence[], ribbedIn: boolean[], ribless: boolean[], warnings: string[]): AnchorCount | null {
  // A stub at the top edge is too little of a level to show a first rib of its own: a rib given to it is the
  // first rib of the level below traced high, or a clavicle (hard phantom 21010: T1's ribs on a 6 mm C7 stub
  // hid the count). For the last-rib count a stub keeps its rib: a T12 that the scan's top edge cuts may show
  // one (the TotalSegmentator example, tilted).
  const ribbed = ribbedIn.map((r, k) => r && !ev[k].stub);
  const t1 = ribbed.lastIndexOf(true);
  const above = ev[t1 + 1];
  const cut = above !== undefined && (above.partial === true || above.stub);
  // A whole level above with its rib band out of view may be T1 itself; a cut one is a weak count either way.
  if (t1 < 0 || !above || ribbed[t1 + 1] || !(cut || above.bandLeft || above.bandRight || bandSeenAsDeep(above, ev[t1]))) return null;
  // T2 and T3 bear ribs too: a lone "rib" with rib-less levels below it (a clavicle, an iliac crest) is no anchor.
  if (!ribsAlongside(ev, ribbed, t1, -1)) return null;
  // Nor is a "rib" on the column's lowest level, with nothing below to show the thorax goes on (hard phantom
  // 21020, an abdomen CT: bone beside the sacrum read as a rib named the sacrum "T1" at 0.9, and L5-T12 C7-C2).
  if (!ev.slice(0, t1).some((e) => !e.stub && !e.sacral)) return null;
  // Nor is a whole rib-less level with lung beside it a C7: the ribs above were missed or run out of the scan
  // (the Philips chest CT cut 6 mm above T2: T2's ribs were not traced, it read as "C7", and every level was
  // named one off at 0.89-0.90; its true C7 has no lung beside it, its T2-T10 all have). A level the scan cuts
  // is left to the weak count below: the middle third of what is left of it may not be its own middle (hard
  // phantom 20059, whose lungs reach higher than a patient's, read lung beside its cut C7).
  if (!cut && above.lungBeside === true) {
    warnings.push('The rib-less level above the first rib-bearing one has lung beside it, so it is not C7: ribs above were missed or are out of view, and the first-rib count is not used.');
    return null;
  }
  let conf: number = ONE_ANCHOR.t1;
  if (t1 - 2 >= 0 && !ribbed[t1 - 1] && ribless[t1 - 1] && ribbed[t1 - 2]) {
    conf = 0.6;
    warnings.push('The rib pattern at the top of the thorax is irregular (a rib-less level between rib-bearing ones): the first-rib count is uncertain.');
  }
  // A field that cuts one side's rib band along the column (at the "T1" and the "C7" above it) leaves the first
  // rib one side to be seen on, not two, and the first rib is the hardest to trace (short, steep, under the
  // clavicle): one miss moves the count a level (AMOS 0336 in a 200 mm field 80 mm to one side of the spine:
  // every name one level off at 0.86-0.90). One band short at the open top piece alone is the scan's top edge,
  // not the field's side (the Philips chest CT at 5 mm slices, named right).
  const oneSided = (e: LevelEvidence): boolean => e.bandLeft !== e.bandRight;
  if (!cut && oneSided(above) && oneSided(ev[t1])) {
    conf = Math.min(conf, WEAK_RIB_COUNT);
    warnings.push('Only one side of the level above the first rib-bearing one is in the field of view, so a first rib there may have been missed: the first-rib count is uncertain.');
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

export function weakenForMidThoraxWithoutRibs(ev: LevelEvidence[], ribbed: boolean[], count: AnchorCount, warnings: string[]): void {
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
