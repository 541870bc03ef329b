/**
 * Vertebral levels along the straightened spine: the pieces between consecutive discs, and the open pieces
 * from the column's ends to the first and last disc. Positions are mm along the centre line (s), caudal first.
 */
export interface SpineSegment {
  sFrom: number;
  sTo: number;
  /** Whether each end is a disc (false: the column or the scan ends there). */
  caudalDisc: boolean;
  cranialDisc: boolean;
  /**
   * The boundary at that end was placed across a run with no visible disc, where the spacing of the
   * neighbours says a level must be: counting across it may be off by one.
   */
  caudalInferred: boolean;
  cranialInferred: boolean;
}

/**
 * A gap between chosen discs longer than this multiple of the expected spacing holds a level whose disc
 * was not seen (fused, degenerated to a sliver, hidden by cement or hardware): every body has its own
 * level, so it is split where the spacing says, and flagged.
 */
export const GAP_SPLIT_RATIO = 1.45;

export interface DiscChainChecks {
  /** Discs that were placed, not seen (transverse-processes.ts): their boundaries are inferred. */
  inferred?: ReadonlySet<number>;
  /** Whether other evidence shows the gap between two discs to be one level: it is then not split. */
  oneLevel?: (fromMm: number, toMm: number) => boolean;
}

/**
 * Segments between the discs (ascending s), splitting over-long gaps into equal parts (the disc-score
 * maximum nearest each equal split point, when there is one within a quarter spacing), and the open ends.
 * `expectedMm(s)`: local vertebral spacing; `score`: disc score per sample (for placing splits).
 */
export function segmentsFromDiscChain(
  discs: number[],
  columnFrom: number,
  columnTo: number,
  expectedMm: (s: number) => number,
  score: Float32Array,
  stepMm: number,
  checks: DiscChainChecks = {},
): SpineSegment[] {
  const out: SpineSegment[] = [];
  if (discs.length === 0) return out;
  const placed = (s: number): boolean => checks.inferred?.has(s) ?? false;
  const bounds: { s: number; inferred: boolean }[] = [{ s: discs[0], inferred: placed(discs[0]) }];
  for (let i = 0; i + 1 < discs.length; i++) {
    const a = discs[i];
    const b = discs[i + 1];
    const e = expectedAround(discs, i, expectedMm);
    const long = Number.isFinite(e) && (b - a) > GAP_SPLIT_RATIO * e && !checks.oneLevel?.(a, b);
    const parts = long ? Math.round((b - a) / e) : 1;
    for (let k = 1; k < parts; k++) {
      const target = a + ((b - a) * k) / parts;
      bounds.push({ s: nearestScoreMax(score, target, 0.25 * e, stepMm), inferred: true });
    }
    bounds.push({ s: b, inferred: placed(b) });
  }
  // An open end longer than the split ratio holds a whole level whose far disc was not seen (noise, a
  // degenerated disc): inferred boundaries one expected spacing apart, from the last seen disc outwards.
  const endBounds = (from: number, dir: 1 | -1, limit: number): number[] => {
    const extra: number[] = [];
    let at = from;
    for (;;) {
      const e = expectedMm(at + (dir * expectedMm(at)) / 2);
      if (!Number.isFinite(e) || (limit - at) * dir <= GAP_SPLIT_RATIO * e) return extra;
      at = nearestScoreMax(score, at + dir * e, 0.25 * e, stepMm);
      extra.push(at);
    }
  };
  for (const b of endBounds(bounds[bounds.length - 1].s, 1, columnTo)) bounds.push({ s: b, inferred: true });
  for (const b of endBounds(bounds[0].s, -1, columnFrom)) bounds.unshift({ s: b, inferred: true });
  const last = bounds[bounds.length - 1].s;
  const firstBound = bounds[0];
  if (firstBound.s > columnFrom) {
    out.push({ sFrom: columnFrom, sTo: firstBound.s, caudalDisc: false, cranialDisc: true, caudalInferred: false, cranialInferred: firstBound.inferred });
  }
  for (let i = 0; i + 1 < bounds.length; i++) {
    out.push({
      sFrom: bounds[i].s,
      sTo: bounds[i + 1].s,
      caudalDisc: true,
      cranialDisc: true,
      caudalInferred: bounds[i].inferred,
      cranialInferred: bounds[i + 1].inferred,
    });
  }
  if (columnTo > last) {
    out.push({ sFrom: last, sTo: columnTo, caudalDisc: true, cranialDisc: false, caudalInferred: bounds[bounds.length - 1].inferred, cranialInferred: false });
  }
  return out;
}

/** Expected spacing for the gap after disc i: the local estimate, else the median of the neighbouring gaps. */
function expectedAround(discs: number[], i: number, expectedMm: (s: number) => number): number {
  const e = expectedMm((discs[i] + discs[i + 1]) / 2);
  if (Number.isFinite(e)) return e;
  const near: number[] = [];
  for (let j = Math.max(0, i - 2); j <= Math.min(discs.length - 2, i + 2); j++) if (j !== i) near.push(discs[j + 1] - discs[j]);
  near.sort((x, y) => x - y);
  return near.length ? near[near.length >> 1] : NaN;
}

/** The highest local maximum of the disc score within reachMm of target (mm), else target itself. */
export function nearestScoreMax(score: Float32Array, target: number, reachMm: number, stepMm: number): number {
  const t = Math.round(target / stepMm);
  const r = Math.max(1, Math.round(reachMm / stepMm));
  let best = target;
  let bestV = 0;
  for (let s = Math.max(1, t - r); s <= Math.min(score.length - 2, t + r); s++) {
    if (score[s] > bestV && score[s] >= score[s - 1] && score[s] >= score[s + 1]) {
      bestV = score[s];
      best = s * stepMm;
    }
  }
  return best;
}

/**
 * Each whole level's length over the column's own trend of length against position (a Theil-Sen line over
 * the whole levels); NaN for a level cut by the scan's edge, or where fewer than 4 levels are whole.
 */
export function lengthOverTrend(segments: readonly SpineSegment[]): number[] {
  const whole = segments.map((sg, k) => ({ k, x: (sg.sFrom + sg.sTo) / 2, len: sg.sTo - sg.sFrom, ok: sg.caudalDisc && sg.cranialDisc }));
  const pts = whole.filter((w) => w.ok);
  const out = segments.map(() => NaN);
  if (pts.length < 4) return out;
  const slopes: number[] = [];
  for (let i = 0; i < pts.length; i++) for (let j = i + 1; j < pts.length; j++) slopes.push((pts[j].len - pts[i].len) / (pts[j].x - pts[i].x));
  slopes.sort((a, b) => a - b);
  const slope = slopes[slopes.length >> 1];
  const icpt = pts.map((p) => p.len - slope * p.x).sort((a, b) => a - b)[pts.length >> 1];
  for (const p of pts) {
    const fit = icpt + slope * p.x;
    if (fit > 0) out[p.k] = p.len / fit;
  }
  return out;
}

/**
 * A whole level whose length is off the column's own trend by more than this: vertebral spacing changes by a
 * few % per level (Panjabi et al.), so such a level is two bodies behind one missed disc plus a false one, a
 * split body, or a fracture. Its name may be right, but a count carried across it may be off by one: the
 * labelling treats both its boundaries as uncertain.
 */
export const IRREGULAR_LENGTH = 0.25;
/** How near two whole levels of the trend a long and a short neighbour must come together (below). */
const PAIR_SUM_TOLERANCE = 0.15;

/**
 * Which levels are irregular (IRREGULAR_LENGTH off the trend), given lengthOverTrend's ratios. Not a level off
 * the trend paired with a neighbour off the other way, the two together spanning two levels of the trend: that
 * is one disc placed a few mm from its place between two bodies, which moves no count. A missed disc leaves one
 * level near twice the trend, a false one two short pieces that together make one level, a fracture one short
 * level beside whole ones; none of them sums to two. The Philips chest CT rotated 5 deg about its long axis had
 * the T4-T5 disc found 7 mm up (T5 1.32, T4 0.76 of the trend), and the count across it dropped T6-T11, named
 * right, from 0.88 to 0.31; leaning 3 deg to one side, it had two such pairs in a row (T8-T7, T6-T5).
 * So each run of irregular levels, with one regular neighbour either side, is cleared only when every irregular
 * level in it falls into such a pair of neighbours, no level in two pairs: three in a row (long, short, long)
 * cannot, and stay.
 */
export function irregularLevels(lengthRatio: number[]): boolean[] {
  const off = lengthRatio.map((r) => Number.isFinite(r) && Math.abs(r - 1) > IRREGULAR_LENGTH);
  const pairs = (k: number): boolean => {
    const [a, b] = [lengthRatio[k], lengthRatio[k + 1]];
    return (a - 1) * (b - 1) < 0 && Math.abs(a + b - 2) <= PAIR_SUM_TOLERANCE;
  };
  // Whether levels from..to can be split into such pairs and regular levels left alone.
  const tiles = (from: number, to: number): boolean => {
    const ok = new Array<boolean>(to - from + 2).fill(false);
    ok[0] = true;
    for (let i = from; i <= to; i++) {
      const t = i - from;
      if (!ok[t]) continue;
      if (!off[i]) ok[t + 1] = true;
      if (i + 1 <= to && pairs(i)) ok[t + 2] = true;
    }
    return ok[to - from + 1];
  };
  const out = [...off];
  // A regular level paired into one run's tiling is not paired again into the next one's.
  let consumed = -1;
  for (let k = 0; k < off.length; k++) {
    if (!off[k] || (k > 0 && off[k - 1])) continue;
    let end = k;
    while (end + 1 < off.length && off[end + 1]) end++;
    const from = k > 0 && consumed !== k - 1 ? k - 1 : k;
    let tiled = tiles(from, end);
    if (!tiled && end + 1 < off.length && tiles(from, end + 1)) {
      tiled = true;
      consumed = end + 1;
    }
    if (tiled) for (let i = k; i <= end; i++) out[i] = false;
  }
  return out;
}
