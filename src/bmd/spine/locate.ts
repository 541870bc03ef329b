import { patientMmToVoxel, type LoadedVolume, type Vec3, type Volume } from '../../imaging/volume.js';
import { median } from '../median.js';
import type { VertebraLevel } from '../report.js';
import { bodySizeAlongSpine, measureBodyOutline, outlineOrColumn, type BodySizeAlongSpine } from './body-outline.js';
import { centerlineFromTrack, curveToPatientMm, type Centerline } from './centerline.js';
import { chooseDiscChain, localSpacingMm, spacingAtMm, theilSen } from './disc-chain.js';
import { discComplexScore, ellipseProfile, refineDiscCentre, smoothProfile, whiteTopHat } from './disc-profile.js';
import { findSpineTrack, type SpineTrack } from './find-spine.js';
import { measureHeightsMm, type BodyHeightsMm } from './heights.js';
import { labelLevels, NO_ANCHOR } from './labels.js';
import type { LevelEvidence } from './level-evidence.js';
import { lungBeside } from './lung-beside.js';
import { assignRibsToSegments, type RibAssignment } from './rib-assignment.js';
import { RIB_BAND_CENTRE_MM, SLAB_U_MM, ribBandInView, ribMips, ribsAtCaudalEdge, traceRibs, traceShortRibs, type RibMips, type RibTrace } from './ribs.js';
import { sacralPieces } from './sacrum.js';
import { irregularLevels, lengthOverTrend, nearestScoreMax, segmentsFromDiscChain, type SpineSegment } from './segments.js';
import { straightenSpine, type StraightSpine } from './straighten.js';
import { evenOutUnevenPairs } from './uneven-pairs.js';
import {
  boundariesPartedByProcesses,
  checkDiscsAgainstProcesses,
  pairedProcessLevelsMm,
  processCentresMm,
  processProfiles,
  spacingWithProcessGaps,
} from './transverse-processes.js';
import { buildWorkingGrid, WORKING_SPACING_MM, type WorkingGrid } from './working-grid.js';
import { ONE_THREAD, type ChunkRunner } from '../parallel/chunk-runner.js';
import { shallowerCaudally } from './column-depth-trend.js';

/** One found vertebral body with its geometry: what the ROI, the model and the report need. */
export interface LocatedVertebra {
  level: VertebraLevel;
  labelConfidence: number;
  /** Body centre, LPS mm. */
  centerMm: Vec3;
  widthMm: number;
  depthMm: number;
  /** Endplate to endplate along the column (mid line), mm. */
  heightMm: number;
  heightsMm: BodyHeightsMm | null;
  partialCoverage: boolean;
  ribBearing: boolean;
  /** Extent along the spine's centre line, mm from its caudal end (disc to disc). */
  sFromMm: number;
  sToMm: number;
}

export interface SpineLocation {
  grid: WorkingGrid;
  track: SpineTrack;
  centerline: Centerline | null;
  vertebrae: LocatedVertebra[];
  anchors: { t1: VertebraLevel | null; t12: VertebraLevel | null; l5: VertebraLevel | null };
  /** Every piece of the column (caudal first) with the evidence its name rests on: for audits and tests. */
  pieces: (SpineSegment & LevelEvidence & { name: VertebraLevel | null })[];
  warnings: string[];
}

/** The straightened block: the body and canal (u), and far enough sideways (v) for the rib band. */
const U_RANGE_MM: [number, number] = [-40, 60];
const V_RANGE_MM: [number, number] = [-80, 80];
/** Spacing used where the profile is too short to show its own period: body depth x 0.9 (Panjabi). */
const fallbackSpacingMm = (depthMm: number): number => (Number.isFinite(depthMm) ? Math.max(16, Math.min(42, 0.9 * depthMm)) : 25);

const now = (): number => performance.now();

/** Spine finding, level separation and naming, caudal level first. Pure apart from timing. */
export function locateVertebrae(loaded: LoadedVolume, timingsMs: Record<string, number> = {}, runner: ChunkRunner = ONE_THREAD): SpineLocation {
  let t0 = now();
  const grid = buildWorkingGrid(loaded.volume, WORKING_SPACING_MM, runner);
  const track = findSpineTrack(grid);
  const warnings: string[] = [];
  const none = { t1: null, t12: null, l5: null };
  if (track.zFirst < 0) {
    timingsMs.spine = now() - t0;
    warnings.push('No spine was found in the field of view (no vertebral column with a spinal canal); no levels are reported.');
    return { grid, track, centerline: null, vertebrae: [], anchors: none, pieces: [], warnings };
  }
  const cl = centerlineFromTrack(grid, track);
  const st = straightenSpine(loaded.volume, cl, U_RANGE_MM, V_RANGE_MM, runner);
  const size = bodySizeAlongSpine(st);
  const mips = ribMips(st);
  const traced = traceRibs(st, mips);
  const { segments, expected, processes } = separateLevels(st, size, traced);
  timingsMs.spine = now() - t0;
  t0 = now();
  if (segments.length === 0) {
    warnings.push('A spinal column was found but no intervertebral discs could be separated; no levels are reported.');
    timingsMs.labels = now() - t0;
    return { grid, track, centerline: cl, vertebrae: [], anchors: none, pieces: [], warnings };
  }
  const fov: FieldOfView = {
    ribDepthCut: (sFromMm, sToMm, side) => ribDepthCutByFov(loaded.volume, cl, sFromMm, sToMm, side),
    bandDepthMm: (sFromMm, sToMm, side) => bandDepthInViewMm(loaded.volume, cl, sFromMm, sToMm, side),
  };
  const partedByProcesses = boundariesPartedByProcesses(segments, processes.levelsMm, processes.oneLevelGap, processes.discShare);
  const { evidence, ribMarginMm, irregular, sacrumRuledOut } = levelEvidence(st, { mips, traced }, segments, size, expected, fov, partedByProcesses, scanGoesOnAbove(loaded.volume, cl));
  const labels = labelLevels(evidence, ribMarginMm);
  if (sacrumRuledOut) warnings.push('Bone as wide as the sacral alae lies below levels that bear ribs on both sides, so it is not taken for the sacrum.');
  warnings.push(...labels.warnings);
  const vertebrae: LocatedVertebra[] = [];
  segments.forEach((sg, k) => {
    const name = labels.names[k];
    if (name !== null) vertebrae.push(locatedVertebra(st, cl, size, sg, name, labels.confidence[k], evidence[k].ribLeft || evidence[k].ribRight));
  });
  // Bodies that grow shallower caudally are not a spine's (column-depth-trend.ts): the names say nothing then.
  if (shallowerCaudally(vertebrae.map((v) => ({ sMm: (v.sFromMm + v.sToMm) / 2, depthMm: v.depthMm })))) {
    for (const v of vertebrae) v.labelConfidence = Math.min(v.labelConfidence, NO_ANCHOR);
    warnings.push(
      'The bodies found grow shallower towards the feet, which vertebral bodies do not: the column followed may not be the spine (a field of view that cuts the spinal canal away?), so no level is named. Check the images.',
    );
  }
  if (irregular.some((f, k) => f && !segments[k].caudalInferred && !segments[k].cranialInferred)) {
    warnings.push('A level is much longer or shorter than its neighbours (a missed disc, a split body or a fracture): counting across it is less certain.');
  }
  if (segments.some((sg) => sg.caudalInferred || sg.cranialInferred)) {
    warnings.push('At least one disc was not visible where the spacing of its neighbours puts one (fused or degenerated level, cement, hardware): that boundary is inferred and counting across it is less certain.');
  }
  // Cranial first, as reports read top-down.
  vertebrae.reverse();
  const nameAt = (k: number | null): VertebraLevel | null => (k === null ? null : labels.names[k]);
  timingsMs.labels = now() - t0;
  return {
    grid,
    track,
    centerline: cl,
    vertebrae,
    anchors: { t1: nameAt(labels.anchors.t1), t12: nameAt(labels.anchors.t12), l5: nameAt(labels.anchors.l5) },
    pieces: segments.map((sg, k) => ({ ...sg, ...evidence[k], name: labels.names[k] })),
    warnings,
  };
}

/**
 * The levels of the straightened column: the body profile (ellipse at 80% of the body's size), its local
 * spacing, the disc-complex score, a chain of discs chosen twice (the autocorrelation spacing averages over
 * ~4 levels, too long at the top of a chest CT where C7-T2 are 16-18 mm apart; the first chain's own gaps
 * give the spacing for the second), each disc moved to its complex's centre, and the pieces between them.
 */
function separateLevels(
  st: StraightSpine,
  size: BodySizeAlongSpine,
  ribs: readonly RibTrace[],
): { segments: SpineSegment[]; expected: (sMm: number) => number; processes: { levelsMm: number[]; oneLevelGap: boolean[]; discShare: number } } {
  const profile = smoothProfile(
    ellipseProfile(st, size.depthMm.map((d) => 0.4 * (Number.isFinite(d) ? d : 28)), size.widthMm.map((w) => 0.4 * (Number.isFinite(w) ? w : 36)), size.uCenterMm, size.vCenterMm),
    1 / st.stepMm,
  );
  const measured = localSpacingMm(profile, st.stepMm, size.depthMm);
  const spacing = measured.map((v, s) => (Number.isFinite(v) ? v : fallbackSpacingMm(size.depthMm[s])));
  const topHat = whiteTopHat(profile, spacing.map((v) => (0.6 * v) / st.stepMm));
  const score = smoothProfile(discComplexScore(topHat, spacing.map((v) => (0.25 * v) / st.stepMm)), 1 / st.stepMm);
  const first = chooseDiscChain(score, { spacingMm: spacing, stepMm: st.stepMm });
  const spacing2 = spacingFromChain(first, spacing, st.stepMm);
  let colFrom = 0;
  while (colFrom < st.ns && Number.isNaN(profile[colFrom])) colFrom++;
  let colTo = st.ns - 1;
  while (colTo > colFrom && Number.isNaN(profile[colTo])) colTo--;
  // One disc between the transverse processes of two neighbouring levels: a check on the chain that does not
  // rest on the disc profile (hard phantom 21036: a false disc inside L3 and every name below it one level off).
  const chainExpected = spacingAtMm(spacing2, st.stepMm);
  const [left, right] = processProfiles(st, size).map((p) => processCentresMm(p, st.stepMm, chainExpected));
  const levels = pairedProcessLevelsMm(left, right, chainExpected);
  // No rib crosses or meets the spine within half a level of the gap: a lumbar gap (see RIB_FREE_GAP_OF_EXPECTED_MAX).
  const ribFree = (fromMm: number, toMm: number): boolean => {
    const m = 0.5 * chainExpected((fromMm + toMm) / 2);
    return !ribs.some((r) => [r.crossingS, r.headS].some((x) => x > fromMm - m && x < toMm + m));
  };
  // Lumbar processes a level apart outweigh a disc period that reads short (spacingWithProcessGaps).
  const spacing3 = spacingWithProcessGaps(spacing2, levels, st.stepMm, ribFree);
  const expected = spacingAtMm(spacing3, st.stepMm);
  const chain = chooseDiscChain(score, { spacingMm: spacing3, stepMm: st.stepMm });
  const seen = [...new Set(chain.map((c) => refineDiscCentre(profile, topHat, c, (0.3 * spacing3[c]) / st.stepMm) * st.stepMm))].sort((a, b) => a - b);
  const snap = (t: number, r: number): number => nearestScoreMax(score, t, r, st.stepMm);
  const { discs, inferred, oneLevel, oneLevelGap, discShare } = checkDiscsAgainstProcesses(seen, levels, expected, snap, ribFree);
  return {
    segments: evenOutUnevenPairs(segmentsFromDiscChain(discs, colFrom * st.stepMm, colTo * st.stepMm, expected, score, st.stepMm, { inferred, oneLevel }), score, st.stepMm),
    expected,
    processes: { levelsMm: levels, oneLevelGap, discShare },
  };
}

/** What each piece's name will rest on: its ribs, whether its rib band is in view, sacrum, stub, doubts. */
function levelEvidence(
  st: StraightSpine,
  { mips, traced }: { mips: RibMips; traced: RibTrace[] },
  segments: SpineSegment[],
  size: BodySizeAlongSpine,
  expected: (sMm: number) => number,
  fov: FieldOfView,
  partedByProcesses: boolean[],
  columnLostAbove: boolean,
): { evidence: LevelEvidence[]; ribMarginMm: number; irregular: boolean[]; sacrumRuledOut: boolean } {
  const inScan = traced.filter((r) => !r.runsOutOfScan);
  const runsOut = traced.filter((r) => r.runsOutOfScan);
  const belowScan = ribsAtCaudalEdge(st, mips);
  const shortRibOf = shortRibsOfLevels(traceShortRibs(st, mips), inScan, segments);
  const first = ribsOfLevels(inScan, segments);
  const sacralTop = sacralPieces(st, segments, size.uCenterMm, first.ribOf.map((r) => r.left && r.right));
  const sacrumRuledOut = sacralTop >= 0 && ribsAboveSacrum(sacralTop, first.ribOf);
  const sacrumTop = sacrumRuledOut ? -1 : sacralTop;
  // No rib articulates with the sacrum: bone beside it traced as a rib is an iliac wing. Left in, it takes a place
  // in the ribs' alignment and can push the twelfth rib off T12 (the TotalSegmentator example turned 3 degrees:
  // both iliac wings went to the sacral pieces and T12's pair was left over, so no last-rib count).
  const ribs = sacrumTop >= 0 ? inScan.filter((r) => r.headS >= segments[sacrumTop].sTo) : inScan;
  const { ribOf, ribFit } = ribs.length < inScan.length ? ribsOfLevels(ribs, segments) : first;
  const unassignedIn = (sg: SpineSegment): boolean => ribFit.segmentOf.some((k, i) => k < 0 && ribs[i].headS >= sg.sFrom && ribs[i].headS < sg.sTo);
  const lengthRatio = lengthOverTrend(segments);
  const irregular = irregularLevels(lengthRatio);
  const evidence = segments.map((sg, k): LevelEvidence => {
    const whole = sg.caudalDisc && sg.cranialDisc;
    // The rib band beside this level: a rib of this level would cross it here or lower (ribs descend as
    // they leave the spine), so the level's own span must be in view for "no rib" to mean anything.
    const bandFrom = sg.sFrom / st.stepMm;
    const bandTo = sg.sTo / st.stepMm;
    // A rib that runs out of the top of the scan belongs to a level between its crossing and the scan's end,
    // and so does its partner on the other side, traced or not: there, "no rib" says nothing.
    const ribOutOfScan = runsOut.some((r) => sg.sTo > r.crossingS);
    // Likewise a rib cut off by the scan's caudal edge belongs to a level whose rib band reaches down to it.
    const ribBelowScan = belowScan.some((r) => sg.sFrom - RIB_DESCENT_MM <= r.s);
    const inView = (side: 1 | -1): boolean =>
      ribBandInView(st, bandFrom, bandTo, side) && !fov.ribDepthCut(sg.sFrom, sg.sTo, side) && !ribOutOfScan && !ribBelowScan;
    // And the RIB_DESCENT_MM below it, where a twelfth rib crosses (hard phantom 20051: the scan ended just
    // below T12, whose ribs cross the band 10-13 mm under the body as on AMOS 0336; T12 read as rib-less).
    const descentFrom = (sg.sFrom - RIB_DESCENT_MM) / st.stepMm;
    const descentInView = ribBandInView(st, descentFrom, bandFrom, 1) || ribBandInView(st, descentFrom, bandFrom, -1);
    return {
      ribLeft: ribOf[k].left,
      ribRight: ribOf[k].right,
      shortRibLeft: shortRibOf[k].left,
      shortRibRight: shortRibOf[k].right,
      bandLeft: inView(1),
      bandRight: inView(-1),
      bandDepthLeftMm: fov.bandDepthMm(sg.sFrom, sg.sTo, 1),
      bandDepthRightMm: fov.bandDepthMm(sg.sFrom, sg.sTo, -1),
      ribDescentInView: descentInView,
      unassignedRib: unassignedIn(sg),
      lengthOverTrend: lengthRatio[k],
      cranialPartedByProcesses: partedByProcesses[k],
      lungBeside: lungBeside(st, sg.sFrom, sg.sTo),
      whole,
      caudalInferred: sg.caudalInferred || irregular[k],
      cranialInferred: sg.cranialInferred || irregular[k],
      sacral: k <= sacrumTop,
      stub: !whole && sg.sTo - sg.sFrom < 0.5 * expected((sg.sFrom + sg.sTo) / 2),
      // An open top piece where the column was lost inside the scan is cut as much as one the scan's edge cuts:
      // the straightened spine, and the rib band read from it, end there.
      partial: !whole && (sg.sTo - sg.sFrom < expected((sg.sFrom + sg.sTo) / 2) || (columnLostAbove && k === segments.length - 1)),
    };
  });
  return { evidence, ribMarginMm: ribFit.marginMm, irregular, sacrumRuledOut };
}

/** What the field of view leaves of the rib band beside a stretch of the column (mm along it), per side. */
interface FieldOfView {
  ribDepthCut: (sFromMm: number, sToMm: number, side: 1 | -1) => boolean;
  bandDepthMm: (sFromMm: number, sToMm: number, side: 1 | -1) => number;
}

/**
 * Whether the field of view cuts off, in-plane, the back of the slab the rib tracer reads (SLAB_U_MM: to 55 mm
 * behind the body centre) at the band beside [sFrom, sTo] (mm along the column; 40% of its samples or more). A
 * field of view centred on the heart can end 25-35 mm behind the body, showing the band's front but none of its
 * ribs (hard phantom 20035: T8-T11 read as rib-less, and the last-rib count fell on T7). Asking only for the
 * depth where most ribs cross (40 mm) was not enough: on the Philips chest CT cropped to a 200 mm field on the
 * heart (its edge 44-64 mm behind T1-T3), the ribs of T1-T3 ran out of view, T4 was taken for T1 and every
 * level was named three levels off at 0.86-0.90 (real variant philips/fov-heart-30). Samples
 * beyond the scan's first or last slice do not count: the ends of the scan are judged by the level's own
 * coverage (a stub or partial level), and at the top of a chest CT the column's curve tips that depth above
 * the last slice beside a C7 that is in view.
 */
function ribDepthCutByFov(vol: Volume, cl: Centerline, sFromMm: number, sToMm: number, side: 1 | -1): boolean {
  const [nx, ny, nz] = vol.dims;
  let cut = 0;
  let total = 0;
  for (let s = sFromMm; s <= sToMm; s += 2) {
    const [i, j, k] = patientMmToVoxel(vol, curveToPatientMm(cl, s, SLAB_U_MM[1], side * RIB_BAND_CENTRE_MM));
    if (!onGrid(k, nz)) continue;
    total++;
    if (!onGrid(i, nx) || !onGrid(j, ny)) cut++;
  }
  return total > 0 && cut >= 0.4 * total;
}

/**
 * How far behind the body centre (mm, up to the slab's back, SLAB_U_MM) the rib band beside [sFrom, sTo] lies
 * inside the scan without a break from the centre's depth: the median over the stretch's slices in the scan.
 * Where a field cuts the slab, this says whether one level's band is seen as deep as another's.
 */
function bandDepthInViewMm(vol: Volume, cl: Centerline, sFromMm: number, sToMm: number, side: 1 | -1): number {
  const [nx, ny, nz] = vol.dims;
  const depths: number[] = [];
  for (let s = sFromMm; s <= sToMm; s += 2) {
    if (!onGrid(patientMmToVoxel(vol, curveToPatientMm(cl, s, 0, side * RIB_BAND_CENTRE_MM))[2], nz)) continue;
    let u = 0;
    for (; u <= SLAB_U_MM[1]; u++) {
      // Past the first or last slice counts as out of view too: a rib there would not be in the scan either.
      const [i, j, k] = patientMmToVoxel(vol, curveToPatientMm(cl, s, u, side * RIB_BAND_CENTRE_MM));
      if (!onGrid(i, nx) || !onGrid(j, ny) || !onGrid(k, nz)) break;
    }
    depths.push(u - 1);
  }
  return depths.length > 0 ? median(depths) : -1;
}

/**
 * Whether the scan goes on more than half a level (15 mm) above the column's cranial end: the track lost the
 * spine inside the scan. Then the top piece may be any level, and its rib may lie just beyond the straightened
 * spine (the Philips chest CT in a 260 mm field 80 mm right of the spine: the track ended inside T6, whose
 * piece read as a rib-less "C7" above T7, and every level was named six levels off at 0.89-0.90).
 */
export function scanGoesOnAbove(vol: Volume, cl: Centerline): boolean {
  const n = cl.n - 1;
  const [i, j, k] = patientMmToVoxel(vol, [cl.pointMm[3 * n], cl.pointMm[3 * n + 1], cl.pointMm[3 * n + 2] + 15]);
  return onGrid(i, vol.dims[0]) && onGrid(j, vol.dims[1]) && onGrid(k, vol.dims[2]);
}

/** A fractional voxel index within the scan on an axis of n voxels (half a voxel of slack at the faces). */
function onGrid(x: number, n: number): boolean {
  return x >= -0.5 && x <= n - 0.5;
}

/** How far below its own level a rib can cross the lateral band (mm): the twelfth, 10-13 mm on AMOS 0336. */
const RIB_DESCENT_MM = 12;

/** The traced ribs aligned to the levels (rib-assignment.ts), and per level which sides took one. */
function ribsOfLevels(ribs: RibTrace[], segments: SpineSegment[]): { ribOf: { left: boolean; right: boolean }[]; ribFit: RibAssignment } {
  const ribOf = segments.map(() => ({ left: false, right: false }));
  const ribFit = assignRibsToSegments(ribs, segments);
  ribFit.segmentOf.forEach((k, i) => {
    if (k >= 0) ribOf[k][ribs[i].side] = true;
  });
  return { ribOf, ribFit };
}

/**
 * Whether levels that would be L3 or L2 above a sacrum found at `sacralTop` bear ribs on both sides: then the
 * wide bone is not the sacral alae, for the lumbar levels above a sacrum bear none (L1-L5, 4-6 with a
 * transitional vertebra; a one-sided "rib" there can be a kidney or an iliac crest, a pair cannot). At the
 * bottom of a chest CT the rib heads and an enhanced aorta beside T11-T12 span as wide at the body's depth
 * (hard phantom 20040: T11 and T12 taken for the sacrum, left unnamed, and every name moved by four levels).
 */
function ribsAboveSacrum(sacralTop: number, ribOf: { left: boolean; right: boolean }[]): boolean {
  return [sacralTop + 3, sacralTop + 4].some((k) => k < ribOf.length && ribOf[k].left && ribOf[k].right);
}

/**
 * Per level and side, whether a short rib crosses the inner band within the level's span and is not one of
 * the lateral band's ribs seen again further in (its crossing or traced end within 8 mm, as in the rib
 * tracer's own dedupe).
 */
function shortRibsOfLevels(short: { side: 'left' | 'right'; crossingS: number }[], ribs: RibTrace[], segments: SpineSegment[]): { left: boolean; right: boolean }[] {
  const fresh = short.filter((r) => !ribs.some((b) => b.side === r.side && (Math.abs(b.crossingS - r.crossingS) <= 8 || Math.abs(b.headS - r.crossingS) <= 8)));
  return segments.map((sg) => {
    const inside = fresh.filter((r) => r.crossingS >= sg.sFrom && r.crossingS <= sg.sTo);
    return { left: inside.some((r) => r.side === 'left'), right: inside.some((r) => r.side === 'right') };
  });
}

/** A named piece's body: outline, centre, size and Genant heights, measured perpendicular to the column. */
function locatedVertebra(
  st: StraightSpine,
  cl: Centerline,
  size: BodySizeAlongSpine,
  sg: SpineSegment,
  level: VertebraLevel,
  labelConfidence: number,
  ribBearing: boolean,
): LocatedVertebra {
  const mid = (sg.sFrom + sg.sTo) / 2;
  const ms = Math.max(0, Math.min(st.ns - 1, Math.round(mid / st.stepMm)));
  const measured = measureBodyOutline(st, sg.sFrom / st.stepMm, sg.sTo / st.stepMm, size.uCenterMm[ms], size.vCenterMm[ms]);
  const o = outlineOrColumn(measured, size, ms);
  const depthMm = Number.isFinite(o.depthMm) ? o.depthMm : size.depthMm[ms];
  const widthMm = Number.isFinite(o.widthMm) ? o.widthMm : size.widthMm[ms];
  const heightsMm = measureHeightsMm(st, sg.sFrom / st.stepMm, sg.sTo / st.stepMm, o.uCenterMm, o.vCenterMm, depthMm);
  return {
    level,
    labelConfidence,
    centerMm: curveToPatientMm(cl, mid, o.uCenterMm, o.vCenterMm),
    widthMm,
    depthMm,
    // Disc centre to disc centre: the ROI's slab is a sixth of it either side of the middle (roiGeometry),
    // which keeps clear of the endplates whatever the Genant heights read (they may be missing).
    heightMm: sg.sTo - sg.sFrom,
    heightsMm,
    partialCoverage: !(sg.caudalDisc && sg.cranialDisc) || o.outsideFraction > 0.02,
    ribBearing,
    sFromMm: sg.sFrom,
    sToMm: sg.sTo,
  };
}

/**
 * Expected spacing per sample from a chain of discs: a robust straight line through its gaps (Theil-Sen;
 * vertebral spacing changes nearly linearly along a few levels: Panjabi), held within 25% of the profile's
 * own estimate. Fewer than three gaps: the profile's estimate.
 */
function spacingFromChain(chain: number[], prior: Float32Array, stepMm: number): Float32Array {
  if (chain.length < 4) return prior;
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    xs.push((chain[i] + chain[i + 1]) / 2);
    ys.push((chain[i + 1] - chain[i]) * stepMm);
  }
  const fit = theilSen(xs, ys);
  if (!fit) return prior;
  return prior.map((p, s) => {
    const f = fit.intercept + fit.slope * s;
    return Number.isFinite(p) ? Math.max(0.75 * p, Math.min(1.25 * p, f)) : f;
  });
}
