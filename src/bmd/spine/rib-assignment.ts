import type { RibTrace } from './ribs.js';

/**
 * Which level each traced rib belongs to: the ribs aligned to the levels together, as a reader counting ribs
 * does (ribs.ts traces them).
 */

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
