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
  for (let s = 0; s < st.ns; s++) {
    for (let k = 0; k < nvHalf; k++) {
      const v = v0 + side * k;
      let m = -Infinity;
      let any = false;
      for (let u = u0; u <= u1; u++) {
        const h = st.hu[v + st.nv * (u + st.nu * s)];
        if (Number.isNaN(h)) continue;
        any = true;
        if (h > m) m = h;
      }
      img[s * nvHalf + k] = any ? m : NaN;
    }
  }
  return { nvHalf, at: (s, k) => (s < 0 || s >= st.ns || k < 0 || k >= nvHalf ? NaN : img[s * nvHalf + k]) };
}

export function traceRibs(st: StraightSpine, mips: RibMips = ribMips(st)): RibTrace[] {
  const out: RibTrace[] = [];
  for (const side of [1, -1] as const) {
    const mip = side > 0 ? mips.left : mips.right;
    for (const { s, contrastHu } of bandPeaks(st, mip, BAND_MM)) {
      const s55 = followRidge(mip.at, s, Math.round((BAND_MM[0] + BAND_MM[1]) / 2 / st.stepMm), Math.round(55 / st.stepMm), st.stepMm);
      const s40 = s55 === null ? null : followRidge(mip.at, s55, Math.round(55 / st.stepMm), Math.round(HEAD_V_MM / st.stepMm), st.stepMm);
      if (s55 === null || s40 === null) continue;
      // The lower ribs (11, 12) have no costotransverse joint and still climb steeply towards their heads
      // on the body: carry the last 15 mm of the trace on to the body's side (~25 mm from the midline).
      // Ribs climb or run level towards the spine; never extrapolated downward, at most 20 mm up.
      const headS = s40 + Math.max(0, Math.min(20 / st.stepMm, s40 - s55));
      out.push({ side: side > 0 ? 'left' : 'right', crossingS: s * st.stepMm, headS: headS * st.stepMm, contrastHu });
    }
  }
  return dedupe(out);
}

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
      if (followRidge(mip.at, s, from, Math.round(HEAD_V_MM / st.stepMm), st.stepMm) !== null) out.push({ side: side > 0 ? 'left' : 'right', crossingS: s * st.stepMm });
    }
  }
  return out;
}

/**
 * Where something rib-like crosses a band of columns (mm from the centre line) on one side's MIP: sample
 * indices along s of local peaks standing MIN_CONTRAST_HU above the band's baseline and darker again within
 * 12 mm on both sides (an intercostal space).
 */
function bandPeaks(st: StraightSpine, mip: SideMip, bandMm: [number, number]): { s: number; contrastHu: number }[] {
  const k0 = Math.round(bandMm[0] / st.stepMm);
  const k1 = Math.min(mip.nvHalf - 1, Math.round(bandMm[1] / st.stepMm));
  if (k1 <= k0) return [];
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
  if (finite.length === 0) return [];
  // Baseline: the band's lower third (muscle and fat between the ribs).
  const baselineAt = localBaseline(band, Math.round(BASELINE_REACH_MM / st.stepMm), finite[Math.floor(finite.length / 3)]);
  const sm = new Float32Array(st.ns).fill(NaN);
  for (let s = 1; s + 1 < st.ns; s++) sm[s] = (band[s - 1] + band[s] + band[s + 1]) / 3;
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
 */
function dedupe(ribs: RibTrace[]): RibTrace[] {
  const sorted = [...ribs].sort((a, b) => b.contrastHu - a.contrastHu);
  const kept: RibTrace[] = [];
  for (const r of sorted) {
    if (kept.some((k) => k.side === r.side && Math.abs(k.crossingS - r.crossingS) <= 10 && Math.abs(k.headS - r.headS) <= 8)) continue;
    kept.push(r);
  }
  return kept.sort((a, b) => a.crossingS - b.crossingS);
}

/**
 * Follows the brightest ridge from (s, kFrom) medially to kTo, one mm at a time; a rib climbs cranially as
 * it nears the spine, so each step may move up to 3 samples up or 2 down. Null when the ridge is lost for
 * more than 6 mm (not a rib reaching the spine, e.g. the scapula's edge or a costal cartilage end).
 */
function followRidge(at: (s: number, k: number) => number, s0: number, kFrom: number, kTo: number, stepMm: number): number | null {
  let s = s0;
  let lost = 0;
  const maxLost = Math.round(6 / stepMm);
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
    if (!(best >= RIDGE_HU)) {
      lost++;
      if (lost > maxLost) return null;
      continue;
    }
    lost = 0;
    s = arg;
  }
  return s;
}

/**
 * Where a rib meets the spine relative to its own vertebra (Gray's Anatomy): the head of rib n sits on the
 * disc above Tn (ribs 2-9) or on Tn's cranial half (ribs 1, 10-12), the tubercle on Tn's transverse process
 * at its pedicles. So the traced end lies between the middle of its own level and a little above its cranial
 * disc: this window (fractions of the level's length from its caudal end).
 */
const OWN_WINDOW: [number, number] = [0.5, 1.15];
/** Cost (mm) of a traced rib that belongs to no level (a clavicle, scapula edge or calcified cartilage). */
const UNASSIGNED_COST_MM = 12;
/** Cost (mm) per level by which consecutive ribs' levels differ from what their spacing says. */
const STEP_MISMATCH_COST_MM = 15;
/** A left and a right rib crossing the band within this distance are one pair, on one level. */
const PAIR_MM = 8;

export interface RibAssignment {
  /** Per rib (in the order given): its segment index, or -1. */
  segmentOf: number[];
  /**
   * How much worse (mm of window distance) the same ribs fit one level up or down as a whole: the evidence
   * that the count is not off by one. Infinity with no ribs assigned.
   */
  marginMm: number;
}

/** Ribs grouped into events: a left and a right rib crossing the band together, or one rib; by position. */
function ribEvents(ribs: RibTrace[]): number[][] {
  const used = new Set<number>();
  const events: number[][] = [];
  const order = ribs.map((_, i) => i).sort((x, y) => ribs[x].crossingS - ribs[y].crossingS);
  for (const i of order) {
    if (used.has(i)) continue;
    used.add(i);
    const mate = order.find((j) => !used.has(j) && ribs[j].side !== ribs[i].side && Math.abs(ribs[j].crossingS - ribs[i].crossingS) <= PAIR_MM);
    if (mate !== undefined) used.add(mate);
    events.push(mate === undefined ? [i] : [i, mate]);
  }
  const meanHead = (e: number[]): number => mean(e.map((i) => ribs[i].headS));
  return events.sort((a, b) => meanHead(a) - meanHead(b));
}

/**
 * Which level each rib belongs to. One rib per level and side, in order, and a left and a right rib that
 * cross the band together belong to one level: so the ribs are aligned to the levels together (a monotone
 * alignment, dynamic programming over rib pairs and unpaired ribs), each rib paying the distance from its
 * traced end to its level's window, and consecutive ribs paying when their levels are further apart than
 * their own spacing says. One rib whose traced end sits on a disc cannot then be pushed onto the
 * neighbouring level alone: the whole sequence decides, as a reader counting ribs does.
 * Segments are caudal first.
 */
export function assignRibsToSegments(ribs: RibTrace[], segments: { sFrom: number; sTo: number }[]): RibAssignment {
  const segmentOf = ribs.map(() => -1);
  const n = segments.length;
  const events = ribEvents(ribs);
  const m = events.length;
  if (m === 0 || n === 0) return { segmentOf, marginMm: Infinity };
  const windowCost = (e: number, k: number): number => {
    // Off the column's ends (only when the whole alignment is moved a level): as if unassigned.
    if (k < 0 || k >= n) return UNASSIGNED_COST_MM * events[e].length;
    const sg = segments[k];
    const len = sg.sTo - sg.sFrom;
    const lo = sg.sFrom + OWN_WINDOW[0] * len;
    const hi = sg.sFrom + OWN_WINDOW[1] * len;
    let c = 0;
    for (const i of events[e]) {
      const h = ribs[i].headS;
      c += h < lo ? lo - h : h > hi ? h - hi : 0;
    }
    return c;
  };
  const headOf = (e: number): number => mean(events[e].map((i) => ribs[i].headS));
  const chosen = alignEvents({
    events: m,
    levels: n,
    own: windowCost,
    unassigned: (e) => UNASSIGNED_COST_MM * events[e].length,
    // Traced ends sit at level-dependent heights in their levels (the lower ribs climb steeply), so their
    // spacing says how many levels apart they are only to within half a level.
    step: (e, q, k, j) => STEP_MISMATCH_COST_MM * Math.max(0, Math.abs(k - j - (headOf(e) - headOf(q)) / (segments[k].sTo - segments[k].sFrom)) - 0.5),
    sharesSide: (a, b) => events[a].some((i) => events[b].some((j) => ribs[j].side === ribs[i].side)),
  });
  chosen.forEach((k, e) => {
    for (const i of events[e]) segmentOf[i] = k;
  });
  // The same alignment moved one level up or down, as a whole: how much worse does it fit?
  const fit = (shift: number): number => {
    let c = 0;
    for (let e = 0; e < m; e++) if (chosen[e] >= 0) c += windowCost(e, chosen[e] + shift);
    return c;
  };
  const assigned = chosen.some((c) => c >= 0);
  const marginMm = assigned ? Math.min(fit(1), fit(-1)) - fit(0) : Infinity;
  return { segmentOf, marginMm };
}

/** The costs of aligning rib events (in order) to levels, for alignEvents. */
interface AlignmentCosts {
  events: number;
  levels: number;
  /** Event e on level k. */
  own: (e: number, k: number) => number;
  /** Event e left unassigned (a clavicle, a scapula edge). */
  unassigned: (e: number) => number;
  /** Event e on level k after event q, the last assigned before it, on level j. */
  step: (e: number, q: number, k: number, j: number) => number;
  /** Whether events a and b hold a rib of the same side. */
  sharesSide: (a: number, b: number) => boolean;
}

/**
 * The cheapest monotone alignment of events to levels (dynamic programming), with one rib per level and side;
 * per event its level, or -1. State best[e][k]: events 0..e aligned with the last assigned one on level k
 * (k = levels: none yet); took[e][k]: whether event e itself is that one; from[e][k]: the state before. The
 * state is the last assigned level, not event e's own, so that an unassigned rib between two others does not
 * let them break order or share a level's side.
 */
function alignEvents(c: AlignmentCosts): Int32Array {
  const { events: m, levels: n } = c;
  const best: Float64Array[] = [];
  const took: Uint8Array[] = [];
  const from: Int32Array[] = [];
  /** The last event up to q that the path ending in state (q, k) assigned (to k); -1 if none. */
  const lastTaken = (q: number, k: number): number => {
    while (q >= 0 && !took[q][k]) q--;
    return q;
  };
  /** Whether a side of event e is taken on level k by the path ending in state (e - 1, k). */
  const sideTaken = (e: number, k: number): boolean => {
    for (let q = lastTaken(e - 1, k); q >= 0; q = from[q][k] === k ? lastTaken(q - 1, k) : -1) if (c.sharesSide(e, q)) return true;
    return false;
  };
  for (let e = 0; e < m; e++) {
    const b = new Float64Array(n + 1).fill(Infinity);
    const t = new Uint8Array(n + 1);
    const f = new Int32Array(n + 1).fill(-1);
    const offer = (k: number, v: number, assigned: boolean, j: number): void => {
      if (v < b[k]) {
        b[k] = v;
        t[k] = assigned ? 1 : 0;
        f[k] = j;
      }
    };
    for (let j = e === 0 ? n : 0; j <= n; j++) {
      const prev = e === 0 ? 0 : best[e - 1][j];
      if (prev === Infinity) continue;
      // Left unassigned: the state stays.
      offer(j, prev + c.unassigned(e), false, j);
      const q = j < n ? lastTaken(e - 1, j) : -1;
      for (let k = j < n ? j : 0; k < n; k++) {
        // A level may take a left rib and a right rib that did not pair up, not two of one side.
        if (k === j && sideTaken(e, k)) continue;
        offer(k, prev + c.own(e, k) + (q >= 0 ? c.step(e, q, k, j) : 0), true, j);
      }
    }
    best.push(b);
    took.push(t);
    from.push(f);
  }
  let k = 0;
  for (let x = 1; x <= n; x++) if (best[m - 1][x] < best[m - 1][k]) k = x;
  const chosen = new Int32Array(m);
  for (let e = m - 1; e >= 0; e--) {
    chosen[e] = took[e][k] ? k : -1;
    k = from[e][k];
  }
  return chosen;
}

function mean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
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

