import type { StraightSpine } from './straighten.js';
import { median } from '../median.js';

/**
 * Ribs on the straightened spine, for counting levels as a reader does (ribs articulate with T1-T12 only:
 * Gray's Anatomy, thoracic vertebrae and costovertebral joints).
 *
 * Seen from behind in the spine's own frame, each rib leaves its vertebra at the costovertebral joint
 * (beside the body's cranial part, ~15-30 mm from the midline), runs posterolaterally past the transverse
 * process and descends as it goes lateral. A lumbar transverse process ends 35-50 mm from the midline; the
 * scapula lies behind the ribs (further posterior than the band used here), the clavicle in front of it.
 * So a rib is found where it crosses a lateral band (58-72 mm from the centre line, in a slab from the body
 * centre to 40 mm behind it), then followed medially along its ridge to its head, whose position along
 * the spine says which vertebra it belongs to.
 */
export interface RibTrace {
  side: 'left' | 'right';
  /** Where it crosses the lateral band, and where the traced ridge meets the spine (extrapolated), mm along s. */
  crossingS: number;
  headS: number;
  /** MIP brightness of the crossing above the band's soft-tissue baseline, HU. */
  contrastHu: number;
  /**
   * The traced ridge ran against the scan's cranial end, or its head lies beyond it: the rib goes on out of
   * view, so where it meets the spine, and which level it belongs to, cannot be seen.
   */
  runsOutOfScan: boolean;
}

/** Lateral band where ribs cross and lumbar transverse processes do not reach (mm from the centre line). */
const BAND_MM: [number, number] = [58, 72];
/** The band's middle (mm from the centre line). */
export const RIB_BAND_CENTRE_MM = (BAND_MM[0] + BAND_MM[1]) / 2;
/**
 * Slab (mm along the AP axis, posterior positive) holding rib heads, necks and angles: where they cross the
 * band the ribs lie 30-50 mm behind the body centre (the chest wall's posterior curve; the upper ribs of the
 * Philips chest CT deeper still); the scapula lies further out, and its medial border is a long run along s,
 * not a peak, so it is not taken for a rib. A level's band counts as in view only where this whole slab is.
 */
export const SLAB_U_MM: [number, number] = [-10, 55];
/**
 * The trace stops at the costotransverse joint, ~40 mm from the midline, where ribs 1-10 meet their own
 * vertebra's transverse process (at its pedicles, in the cranial half of the body): a surer marker of the
 * level than the head, which sits on the disc between two vertebrae (ribs 2-9).
 */
const HEAD_V_MM = 40;
/**
 * How far short of its end (HEAD_V_MM) a traced rib may have lost its ridge. Every rib of the two real scans and
 * of hard phantoms 20000-20059 is still bone-bright at 40 mm (0 mm lost); what ended 3-6 mm short was a renal
 * pelvis, an iliac crest or bone beside the sacrum. 2 mm allows a dropout of one or two samples.
 */
const END_LOST_MAX_MM = 2;
/** Inner band where a short first rib still runs behind the body (mm from the centre line). */
const INNER_BAND_MM: [number, number] = [48, 56];
/** A crossing must stand this far above the band's baseline (rib cortex vs muscle in a MIP). */
const MIN_CONTRAST_HU = 120;
/** Along the trace, bone-bright MIP (a rib's cortex, partial-volumed at 3-5 mm slices). */
const RIDGE_HU = 140;

/** One side's MIP over the slab: an ns x nv/2 image read by `at(s, k)` (k samples from the centre line), NaN outside. */
interface SideMip {
  nvHalf: number;
  at: (s: number, k: number) => number;
  /** Each band's profile (bandProfile), made once: the lateral band is read by the tracer and the caudal-edge test. */
  profiles: Map<string, BandProfile | null>;
}

/** Both sides' MIPs of one straightened spine: made once (ribMips) and read by both rib tracers. */
export interface RibMips {
  left: SideMip;
  right: SideMip;
}

export function ribMips(st: StraightSpine): RibMips {
  return { left: sideMip(st, 1), right: sideMip(st, -1) };
}

/** Maximum over the slab of each (s, |v|) on one side. */
function sideMip(st: StraightSpine, side: 1 | -1): SideMip {
  const v0 = Math.round(-st.vMinMm / st.stepMm);
  const nvHalf = side > 0 ? st.nv - v0 : v0 + 1;
  const img = new Float32Array(st.ns * nvHalf).fill(NaN);
  const u0 = Math.max(0, Math.round((SLAB_U_MM[0] - st.uMinMm) / st.stepMm));
  const u1 = Math.min(st.nu - 1, Math.round((SLAB_U_MM[1] - st.uMinMm) / st.stepMm));
  // Row by row of the block (u outer, v inner), so the reads run along memory; NaN stays where no sample is inside.
  for (let s = 0; s < st.ns; s++) {
    const row = s * nvHalf;
    for (let u = u0; u <= u1; u++) {
      const base = v0 + st.nv * (u + st.nu * s);
      for (let k = 0; k < nvHalf; k++) {
        const h = st.hu[base + side * k];
        // NaN fails both tests; a first sample replaces the NaN the row starts with.
        if (h > img[row + k] || (h === h && img[row + k] !== img[row + k])) img[row + k] = h;
      }
    }
  }
  return { nvHalf, at: (s, k) => (s < 0 || s >= st.ns || k < 0 || k >= nvHalf ? NaN : img[s * nvHalf + k]), profiles: new Map() };
}

export function traceRibs(st: StraightSpine, mips: RibMips = ribMips(st)): RibTrace[] {
  const out: TracedRib[] = [];
  for (const side of [1, -1] as const) {
    const mip = side > 0 ? mips.left : mips.right;
    for (const { s, contrastHu } of bandPeaks(st, mip, BAND_MM)) {
      const outer = followRidge(mip.at, s, Math.round((BAND_MM[0] + BAND_MM[1]) / 2 / st.stepMm), Math.round(55 / st.stepMm), st.stepMm);
      const inner = outer === null ? null : followRidge(mip.at, outer.s, Math.round(55 / st.stepMm), Math.round(HEAD_V_MM / st.stepMm), st.stepMm);
      if (outer === null || inner === null) continue;
      // A rib is bone all the way to its costotransverse joint or its head: a trace that ends in soft tissue
      // stopped short of the spine: contrast in a renal pelvis at the excretory phase, an iliac crest or bone
      // beside the sacrum, bridged to the band by the 6 mm a ridge may be lost for on its way (hard phantom
      // 20004: both renal pelves, ending 4-6 mm short of 40 mm, were traced as ribs of L2 and L3).
      if (!inner.atScanEnd && inner.lostAtEndMm > END_LOST_MAX_MM) continue;
      const s40 = inner.s;
      // The lower ribs (11, 12) have no costotransverse joint and still climb steeply towards their heads
      // on the body: carry the last 15 mm of the trace on to the body's side (~25 mm from the midline).
      // Ribs climb or run level towards the spine; never extrapolated downward, at most 20 mm up.
      const headS = s40 + Math.max(0, Math.min(20 / st.stepMm, s40 - outer.s));
      const headOutOfScan = Number.isNaN(mip.at(Math.round(headS), Math.round(HEAD_V_MM / st.stepMm)));
      const runsOutOfScan = outer.atScanEnd || inner.atScanEnd || headOutOfScan;
      out.push({ side: side > 0 ? 'left' : 'right', crossingS: s * st.stepMm, headS: headS * st.stepMm, contrastHu, runsOutOfScan, endS: s40 * st.stepMm });
    }
  }
  return dedupe(out).map(({ endS: _, ...rib }) => rib);
}

/** A traced rib with where its trace ended, HEAD_V_MM from the centre line (mm along s). */
type TracedRib = RibTrace & { endS: number };

/**
 * Where a short first rib crosses the inner band (48-56 mm from the centre line) and runs on to the
 * costotransverse joint: mm along s, per side. The first rib is short and curves forward within a few cm of
 * the spine (Gray's Anatomy, the first rib), so on many patients it never reaches the lateral band behind
 * the body (AMOS 0336: both first ribs turn forward 55-65 mm out; the second ribs cross the band). The inner
 * band also meets every other rib's neck and the lumbar transverse processes: the caller uses these only
 * just above the ribs that the lateral band found.
 */
export function traceShortRibs(st: StraightSpine, mips: RibMips = ribMips(st)): { side: 'left' | 'right'; crossingS: number }[] {
  const out: { side: 'left' | 'right'; crossingS: number }[] = [];
  for (const side of [1, -1] as const) {
    const mip = side > 0 ? mips.left : mips.right;
    for (const { s } of bandPeaks(st, mip, INNER_BAND_MM)) {
      const from = Math.round((INNER_BAND_MM[0] + INNER_BAND_MM[1]) / 2 / st.stepMm);
      // One that runs into the scan's top edge may be any level's rib, seen only as far as the edge.
      if (followRidge(mip.at, s, from, Math.round(HEAD_V_MM / st.stepMm), st.stepMm)?.atScanEnd === false) out.push({ side: side > 0 ? 'left' : 'right', crossingS: s * st.stepMm });
    }
  }
  return out;
}

/** A band's brightness along s (3-sample mean of the median over its columns; NaN out of view) and its local baseline. */
interface BandProfile {
  sm: Float32Array;
  baselineAt: Float32Array;
}

function bandProfile(st: StraightSpine, mip: SideMip, bandMm: [number, number]): BandProfile | null {
  const key = bandMm.join(',');
  if (!mip.profiles.has(key)) mip.profiles.set(key, computeBandProfile(st, mip, bandMm));
  return mip.profiles.get(key) ?? null;
}

function computeBandProfile(st: StraightSpine, mip: SideMip, bandMm: [number, number]): BandProfile | null {
  const k0 = Math.round(bandMm[0] / st.stepMm);
  const k1 = Math.min(mip.nvHalf - 1, Math.round(bandMm[1] / st.stepMm));
  if (k1 <= k0) return null;
  const band = new Float32Array(st.ns).fill(NaN);
  // The band's value at s is the median over its columns, not their mean: the scapula's medial border
  // crosses the band obliquely, bright in a few columns at each s, and a mean lifted by it between two ribs
  // hid the ribs of T2-T4 (hard phantoms with the shoulder girdle: labels 68.7% -> 79.0%, seeds 20000-20059;
  // the real variants 31 -> 32 of 32). A rib crosses most of the band's 14 mm at its own s.
  const cols = new Float32Array(k1 - k0 + 1);
  for (let s = 0; s < st.ns; s++) {
    let c = 0;
    for (let k = k0; k <= k1; k++) {
      const h = mip.at(s, k);
      if (!Number.isNaN(h)) cols[c++] = Math.min(1000, h);
    }
    if (c >= 0.8 * (k1 - k0 + 1)) band[s] = median(cols.subarray(0, c));
  }
  const finite = Array.from(band).filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return null;
  // Baseline: the band's lower third (muscle and fat between the ribs).
  const baselineAt = localBaseline(band, Math.round(BASELINE_REACH_MM / st.stepMm), finite[Math.floor(finite.length / 3)]);
  const sm = new Float32Array(st.ns).fill(NaN);
  for (let s = 1; s + 1 < st.ns; s++) sm[s] = (band[s - 1] + band[s] + band[s + 1]) / 3;
  return { sm, baselineAt };
}

/**
 * Where something rib-like crosses a band of columns (mm from the centre line) on one side's MIP: sample
 * indices along s of local peaks standing MIN_CONTRAST_HU above the band's baseline and darker again within
 * 12 mm on both sides (an intercostal space).
 */
function bandPeaks(st: StraightSpine, mip: SideMip, bandMm: [number, number]): { s: number; contrastHu: number }[] {
  const profile = bandProfile(st, mip, bandMm);
  if (!profile) return [];
  const { sm, baselineAt } = profile;
  const reach = Math.round(12 / st.stepMm);
  const peaks: { s: number; contrastHu: number }[] = [];
  for (let s = 2; s + 2 < st.ns; s++) {
    const v = sm[s];
    const baseline = baselineAt[s];
    if (!(v - baseline >= MIN_CONTRAST_HU) || !(v >= sm[s - 1]) || !(v > sm[s + 1])) continue;
    // A rib is a local peak: darker on both sides within 12 mm (an intercostal space, ~10-20 mm).
    let loBelow = Infinity;
    let loAbove = Infinity;
    for (let d = 2; d <= reach; d++) {
      if (s - d >= 0 && Number.isFinite(sm[s - d])) loBelow = Math.min(loBelow, sm[s - d]);
      if (s + d < st.ns && Number.isFinite(sm[s + d])) loAbove = Math.min(loAbove, sm[s + d]);
    }
    if (v - loBelow >= 0.5 * (v - baseline) && v - loAbove >= 0.5 * (v - baseline)) peaks.push({ s, contrastHu: Math.round(v - baseline) });
  }
  return peaks;
}

/**
 * The band's baseline near each s: the lower third of its values within BASELINE_REACH_MM (about four levels).
 * One baseline for the whole column mixed stretches the band sees differently: the Philips chest CT in a
 * heart-centred field, once the track went on down the bodies (body-follow.ts), lost T2-T4's ribs to a baseline
 * set by the lower column, and with them its first-rib count.
 */
const BASELINE_REACH_MM = 80;

function localBaseline(band: Float32Array, reach: number, fallback: number): Float32Array {
  const out = new Float32Array(band.length);
  const win: number[] = [];
  for (let s = 0; s < band.length; s++) {
    win.length = 0;
    for (let t = Math.max(0, s - reach); t <= Math.min(band.length - 1, s + reach); t++) if (Number.isFinite(band[t])) win.push(band[t]);
    if (win.length < reach) {
      out[s] = fallback;
      continue;
    }
    win.sort((a, b) => a - b);
    out[s] = win[Math.floor(win.length / 3)];
  }
  return out;
}

/**
 * One rib can cross the band as two neighbouring peaks (its upper and lower border at thick slices, the
 * strongly curved first rib, a bifid rib): traces of one side whose crossings lie within 10 mm and whose ends
 * within 8 mm are one rib, the stronger kept (ribs of neighbouring levels cross 15-25 mm apart). Left
 * unmerged, the copy would be pushed onto the next level and invent a rib there.
 *
 * Two traces of one side that ended on the same ridge (SAME_END_MM) wherever they crossed are one rib too:
 * one climbed onto the other's rib, and its end, carried on up from its lower crossing, lands a level too high
 * (hard phantoms 22026 and 20023: a crossing under T1's first rib ran onto it and was carried into C7, which
 * then bore a "rib"). The one that climbed less to get there is that rib's own crossing, and is kept.
 */
const SAME_END_MM = 3;

function dedupe(ribs: TracedRib[]): TracedRib[] {
  const climb = (r: TracedRib): number => r.endS - r.crossingS;
  const ownEnd = ribs.filter((r) => !ribs.some((o) => o !== r && o.side === r.side && Math.abs(o.endS - r.endS) <= SAME_END_MM && climb(o) < climb(r)));
  const sorted = ownEnd.sort((a, b) => b.contrastHu - a.contrastHu);
  const kept: TracedRib[] = [];
  for (const r of sorted) {
    if (kept.some((k) => k.side === r.side && Math.abs(k.crossingS - r.crossingS) <= 10 && Math.abs(k.headS - r.headS) <= 8)) continue;
    kept.push(r);
  }
  return kept.sort((a, b) => a.crossingS - b.crossingS);
}

/** How far into the scan a rib cut by its caudal edge may still peak (a rib is 8-12 mm tall along s). */
const EDGE_PEAK_MM = 4;

/**
 * Where the lateral band's caudal-most sample in view is bright as a rib and darkens above it, per side (mm
 * along s): a rib that crosses the band at or below the scan's caudal edge, cut off with its lateral course. The
 * tracer cannot take it (a crossing is a peak with an intercostal space on both sides), yet the level it belongs
 * to is not rib-less (the Philips chest CT tilted 3 deg about the left-right axis: T11's left rib crossed the band
 * in the last 8 mm of the scan, T11 read as rib-less and the last-rib count put T12 on T10).
 */
export function ribsAtCaudalEdge(st: StraightSpine, mips: RibMips = ribMips(st)): { side: 'left' | 'right'; s: number }[] {
  const out: { side: 'left' | 'right'; s: number }[] = [];
  for (const side of [1, -1] as const) {
    const profile = bandProfile(st, side > 0 ? mips.left : mips.right, BAND_MM);
    if (!profile) continue;
    const { sm, baselineAt } = profile;
    const e = sm.findIndex(Number.isFinite);
    if (e < 0) continue;
    // The brightest of the first EDGE_PEAK_MM in view, with no darker gap between it and the edge.
    let m = e;
    for (let t = e + 1; t <= Math.min(st.ns - 1, e + Math.round(EDGE_PEAK_MM / st.stepMm)); t++) if (sm[t] > sm[m]) m = t;
    const rise = sm[m] - baselineAt[m];
    let loBelow = Infinity;
    for (let t = e; t < m; t++) loBelow = Math.min(loBelow, sm[t]);
    // Darker again within 12 mm above, as past a rib (not the edge of a long bright run).
    let loAbove = Infinity;
    for (let d = 2; d <= Math.round(12 / st.stepMm) && m + d < st.ns; d++) if (Number.isFinite(sm[m + d])) loAbove = Math.min(loAbove, sm[m + d]);
    const cut = !(sm[m] - loBelow >= 0.5 * rise);
    if (rise >= MIN_CONTRAST_HU && cut && sm[m] - loAbove >= 0.5 * rise) out.push({ side: side > 0 ? 'left' : 'right', s: m * st.stepMm });
  }
  return out;
}

/**
 * Within this distance below the scan's cranial end (mm along s) a ridge may go on out of view: a rib climbing
 * to its head 10-30 mm above its crossing is pressed against the edge and followed along it. AMOS 0336 cut just
 * through L1: the twelfth ribs, crossing the band beside L1, ran along the top slice and were given to the cut
 * L1, and the last-rib count named every level two levels off (L2 as T12). Not more than 3 mm: 6 mm also dropped
 * the rib of a twelfth vertebra that the scan's top cuts (the TotalSegmentator example, tilted), whose head is
 * still in view, and with it the last-rib count.
 */
const SCAN_END_REACH_MM = 3;

/**
 * Follows the brightest ridge from (s, kFrom) medially to kTo, one mm at a time; a rib climbs cranially as
 * it nears the spine, so each step may move up to 3 samples up or 2 down. Null when the ridge is lost for
 * more than 6 mm (not a rib reaching the spine, e.g. the scapula's edge or a costal cartilage end), unless it
 * was lost at the scan's end. atScanEnd: the ridge came within SCAN_END_REACH_MM of the scan's cranial end on
 * its way (ribs climb as they near the spine, so only that end hides where they go).
 */
function followRidge(
  at: (s: number, k: number) => number,
  s0: number,
  kFrom: number,
  kTo: number,
  stepMm: number,
): { s: number; atScanEnd: boolean; lostAtEndMm: number } | null {
  let s = s0;
  let lost = 0;
  let atScanEnd = false;
  const maxLost = Math.round(6 / stepMm);
  const endReach = Math.max(1, Math.round(SCAN_END_REACH_MM / stepMm)) + 1;
  for (let k = kFrom; k >= kTo; k--) {
    let best = -Infinity;
    let arg = s;
    for (let d = -2; d <= 3; d++) {
      // Mean of 3 along s: a rib is ~8-12 mm tall, noise is not.
      const v = (at(s + d - 1, k) + at(s + d, k) + at(s + d + 1, k)) / 3;
      if (v > best) {
        best = v;
        arg = s + d;
      }
    }
    if (Number.isNaN(at(s + endReach, k))) atScanEnd = true;
    if (!(best >= RIDGE_HU)) {
      lost++;
      // Lost where the scan ends: the rib may go on out of view, which is not the same as no rib.
      if (lost > maxLost) return atScanEnd ? { s, atScanEnd, lostAtEndMm: lost * stepMm } : null;
      continue;
    }
    lost = 0;
    s = arg;
  }
  return { s, atScanEnd, lostAtEndMm: lost * stepMm };
}

/**
 * Whether the rib band beside s in [sFrom, sTo] lies inside the scanned volume on one side (60% of its
 * samples): only then does "no rib crossing here" mean "no rib". A small field of view or an off-centre
 * reconstruction cuts the band off; the spine itself can still be fully in view.
 */
export function ribBandInView(st: StraightSpine, sFrom: number, sTo: number, side: 1 | -1): boolean {
  const v = Math.round((side * (BAND_MM[0] + BAND_MM[1]) / 2 - st.vMinMm) / st.stepMm);
  const u = Math.round((10 - st.uMinMm) / st.stepMm);
  if (v < 0 || v >= st.nv || u < 0 || u >= st.nu) return false;
  let inside = 0;
  let total = 0;
  for (let s = Math.max(0, Math.round(sFrom)); s <= Math.min(st.ns - 1, Math.round(sTo)); s++) {
    total++;
    if (!Number.isNaN(st.hu[v + st.nv * (u + st.nu * s)])) inside++;
  }
  return total > 0 && inside >= 0.6 * total;
}

