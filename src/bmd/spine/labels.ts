import type { VertebraLevel } from '../report.js';
import { VERTEBRA_LEVELS } from '../report.js';
import type { SpineTrack } from './find-spine.js';
import { isEndStub, type LevelSegment } from './levels.js';
import type { WorkingGrid } from './working-grid.js';

/**
 * Labelling by counting from anatomical anchors, as a radiologist does on a chest/abdomen CT:
 * - T12 is the last rib-bearing vertebra (T1 the first): ribs articulate with T1-T12 only (Gray's Anatomy,
 *   thoracic vertebrae). A level "bears ribs" when dense bone lies 45-100 mm lateral of the body centre in
 *   the caudal half of the level, dorsal to the body centre: there the rib of that level (or the one above)
 *   runs from the costovertebral joint towards the flank, while lumbar transverse processes end within ~45 mm.
 *   The caudal half is used because the 12th rib descends beside L1's cranial half.
 * - L5 is the last level above the sacrum: the canal track ends inside the field of view where the sacrum
 *   curves dorsally, and the segment below the last disc spreads laterally (sacral ala).
 * Both anchors agreeing on the count gives high confidence; one anchor less; none: labels are unknown and
 * every level is reported with low confidence and excluded (`label-uncertain`).
 */
export interface LabelledSegment extends LevelSegment {
  level: VertebraLevel;
  labelConfidence: number;
  ribBearing: boolean;
  /** Mean lateral bone area per slice (mm^2) in the caudal half: the rib evidence. */
  ribAreaMm2: number;
}

export interface LabelResult {
  levels: LabelledSegment[];
  /** The segment under the last disc judged sacral (not reported as a level), if any. */
  sacrum: LevelSegment | null;
  anchors: { t12: number | null; t1: number | null; l5: number | null };
  warnings: string[];
}

/**
 * Lateral bone threshold at ~3 mm voxels: rib cortex partial-volumed reads > 200 HU; with iodinated
 * contrast the kidneys and vessels beside L1-L2 enhance to 150-250 HU, so the threshold rises above them.
 */
export const RIB_HU = 200;
export const RIB_HU_CONTRAST = 300;
/** Rib evidence threshold: ~50 mm^2 of rib bone per slice on both sides together (~ two rib cross-sections). */
const RIB_AREA_MIN_MM2 = 50;
/** Sacral ala: bone spanning >= 90 mm left-right at the body's depth (a lumbar body is 40-55 mm wide). */
const SACRAL_WIDTH_MIN_MM = 90;

export function ribAreaMm2(g: WorkingGrid, t: SpineTrack, seg: LevelSegment, ribHu = RIB_HU): number {
  const [nx, ny] = g.dims;
  const zMid = Math.floor((seg.zFrom + seg.zTo) / 2);
  let area = 0;
  let slices = 0;
  const voxelArea = g.spacingMm[0] * g.spacingMm[1];
  for (let z = seg.zFrom; z <= zMid; z++) {
    if (!t.found[z]) continue;
    const cx = t.bodyX[z];
    const y0 = Math.max(0, Math.round(t.bodyY[z] - 10 / g.spacingMm[1]));
    const y1 = Math.min(ny - 1, Math.round(t.canalY[z] + 30 / g.spacingMm[1]));
    let n = 0;
    for (let y = y0; y <= y1; y++) {
      const row = nx * (y + ny * z);
      for (let x = 0; x < nx; x++) {
        const dMm = Math.abs(x - cx) * g.spacingMm[0];
        if (dMm < 45 || dMm > 100) continue;
        if (g.hu[row + x] > ribHu) n++;
      }
    }
    area += n * voxelArea;
    slices++;
  }
  return slices > 0 ? area / slices : 0;
}

/** Median left-right span (mm) of bone (> 150 HU, gaps <= 6 mm bridged) through the body centre row band. */
export function lateralBoneSpanMm(g: WorkingGrid, t: SpineTrack, seg: LevelSegment): number {
  const [nx, ny] = g.dims;
  const spans: number[] = [];
  const band = Math.max(1, Math.round(15 / g.spacingMm[1]));
  const maxGap = Math.max(1, Math.round(6 / g.spacingMm[0]));
  for (let z = seg.zFrom; z <= seg.zTo; z++) {
    if (!t.found[z]) continue;
    const cx = Math.round(t.bodyX[z]);
    const cy = Math.round(t.bodyY[z]);
    const colMax = (x: number): number => {
      let m = -Infinity;
      for (let y = Math.max(0, cy - band); y <= Math.min(ny - 1, cy + band); y++) m = Math.max(m, g.hu[x + nx * (y + ny * z)]);
      return m;
    };
    let x1 = cx;
    let gap = 0;
    let last1 = cx;
    while (x1 > 0 && gap <= maxGap) {
      x1--;
      if (colMax(x1) > 150) {
        gap = 0;
        last1 = x1;
      } else gap++;
    }
    let x2 = cx;
    let last2 = cx;
    gap = 0;
    while (x2 < nx - 1 && gap <= maxGap) {
      x2++;
      if (colMax(x2) > 150) {
        gap = 0;
        last2 = x2;
      } else gap++;
    }
    spans.push((last2 - last1 + 1) * g.spacingMm[0]);
  }
  spans.sort((a, b) => a - b);
  return spans.length ? spans[spans.length >> 1] : 0;
}

const T1 = VERTEBRA_LEVELS.indexOf('T1');
const T12 = VERTEBRA_LEVELS.indexOf('T12');
const L5 = VERTEBRA_LEVELS.indexOf('L5');

/**
 * Labels segments (ordered caudal to cranial as found, any order accepted: sorted here cranial first).
 * `trackEndsAboveFovMm`: how far above the volume's caudal edge the canal track ends.
 */
export function labelSegments(
  g: WorkingGrid,
  t: SpineTrack,
  segmentsIn: LevelSegment[],
  trackEndsAboveFovMm: number,
  contrast = false,
): LabelResult {
  const warnings: string[] = [];
  // Cranial first.
  const segs = [...segmentsIn].sort((a, b) => b.zFrom - a.zFrom);
  let sacrum: LevelSegment | null = null;
  const caudal = segs[segs.length - 1];
  if (caudal && !caudal.caudalDisc && trackEndsAboveFovMm >= 30 && segs.length >= 2) {
    const span = lateralBoneSpanMm(g, t, caudal);
    if (span >= SACRAL_WIDTH_MIN_MM) sacrum = caudal;
  }
  // Open stubs at either end (too little of a body to name) are not reported; the caudal one has had its
  // chance to show the sacrum above.
  const body = (sacrum ? segs.slice(0, -1) : segs).filter((s, i, all) => {
    if (i === 0) return !isEndStub(s, all[1]);
    if (i === all.length - 1) return !isEndStub(s, all[i - 1]);
    return true;
  });
  const rib = body.map((s) => ribAreaMm2(g, t, s, contrast ? RIB_HU_CONTRAST : RIB_HU));
  const ribBearing = rib.map((a) => a >= RIB_AREA_MIN_MM2);
  // T12: the rib-bearing level followed by a rib-less one where the pattern is clearest: up to 3 levels
  // above it bearing ribs and up to 2 below without. Scoring the neighbourhood, not the first switch, keeps
  // one level with a faint rib (or a spurious short segment) from moving the anchor; a score >= 3 is needed.
  let t12: number | null = null;
  let bestScore = 2;
  for (let k = 0; k + 1 < body.length; k++) {
    if (!ribBearing[k] || ribBearing[k + 1]) continue;
    let sc = 0;
    for (let i = Math.max(0, k - 2); i <= k; i++) if (ribBearing[i]) sc++;
    for (let i = k + 1; i <= Math.min(body.length - 1, k + 2); i++) if (!ribBearing[i]) sc++;
    // Ties go to the more caudal switch: T12 is the LAST rib-bearing level. A rib-less-looking level above
    // rib-bearing ones is a faint rib missed (or a segment split across two bodies), while true lumbar ribs are
    // rare anatomy; so the lower of two equally clear switches is the anatomical one.
    if (sc >= bestScore && (sc > bestScore || t12 !== null)) {
      bestScore = sc;
      t12 = k;
    }
  }
  const firstRib = ribBearing.indexOf(true);
  // The rib-less level above must be a whole cervical body (disc on both sides): a cut-off T1 at the top
  // edge of the scan shows too little rib to be called rib-less.
  // Upper thoracic ribs run steeply and can look faint in this window, so the T1 anchor needs two whole,
  // clearly rib-free levels above a clearly rib-bearing one.
  let t1: number | null = null;
  if (
    firstRib >= 2 &&
    rib[firstRib] >= 2 * RIB_AREA_MIN_MM2 &&
    [firstRib - 1, firstRib - 2].every((i) => rib[i] < 15 && body[i].cranialDisc && body[i].caudalDisc)
  ) {
    t1 = firstRib;
  }
  const l5: number | null = sacrum ? body.length - 1 : null;

  // Index into VERTEBRA_LEVELS for body[0] according to each anchor.
  const fromT12 = t12 !== null ? T12 - t12 : null;
  const fromT1 = t1 !== null ? T1 - t1 : null;
  const fromL5 = l5 !== null ? L5 - l5 : null;
  const estimates = [fromT12, fromT1, fromL5].filter((v): v is number => v !== null);
  let top: number | null = null;
  let confidence = 0.2;
  if (estimates.length >= 2) {
    const agree = estimates.every((e) => e === estimates[0]);
    if (agree) {
      top = estimates[0];
      confidence = 0.95;
    } else {
      // Transitional anatomy (lumbarised S1, 11 or 13 rib pairs) or a missed disc: trust the rib count
      // (DESIGN: count from T12), but say it plainly.
      top = fromT12 ?? fromT1 ?? fromL5;
      confidence = 0.55;
      warnings.push(
        'Rib and sacrum anchors disagree on the vertebral count (transitional vertebra or a missed disc): labels follow the ribs and are uncertain.',
      );
    }
  } else if (estimates.length === 1) {
    top = estimates[0];
    confidence = fromT12 !== null ? 0.85 : fromL5 !== null ? 0.8 : 0.75;
  } else {
    warnings.push(
      'No anatomical anchor (last rib-bearing vertebra, first rib-bearing vertebra or sacrum) is in the field of view: vertebral labels are unknown.',
    );
  }
  // Confidence drops with the distance from the anchor (each counted disc can be missed).
  const anchorIdx = t12 ?? t1 ?? l5;
  const levels: LabelledSegment[] = [];
  for (let k = 0; k < body.length; k++) {
    let idx: number;
    let conf: number;
    if (top === null) {
      // No anchor: place the caudal-most level at L1 if it is rib-less, else T12 (a common chest CT end), flagged.
      const guessCaudal = ribBearing[body.length - 1] ? T12 : VERTEBRA_LEVELS.indexOf('L1');
      idx = guessCaudal - (body.length - 1 - k);
      conf = 0.2;
    } else {
      idx = top + k;
      const dist = anchorIdx !== null ? Math.abs(k - anchorIdx) : 0;
      conf = Math.max(0.3, confidence - 0.02 * Math.max(0, dist - 2));
    }
    if (idx < 0 || idx > L5) continue; // outside C1-L5: not a level we report
    levels.push({
      ...body[k],
      level: VERTEBRA_LEVELS[idx],
      labelConfidence: Math.round(conf * 100) / 100,
      ribBearing: ribBearing[k],
      ribAreaMm2: Math.round(rib[k]),
    });
  }
  return { levels, sacrum, anchors: { t12, t1, l5 }, warnings };
}
