import { followBodies } from './body-follow.js';
import { chooseCanalPath, continuousRun, type CanalCandidate } from './canal-path.js';
import type { WorkingGrid } from './working-grid.js';
import { median } from '../median.js';

/**
 * Per-slice spine track on the working grid (x left, y posterior, z superior; ~3 mm voxels).
 *
 * Why the canal: of everything near the dorsal midline, the spinal canal is the one structure present in
 * every slice from C1 to the sacrum, a low-density tube (CSF/cord/epidural fat, < ~40 HU) with the
 * vertebral body (or disc) directly anterior and posterior-element bone directly posterior. Bodies, discs,
 * aorta and fat planes each fail one of those tests somewhere, so the canal is found per slice as a set of
 * candidates and one continuous path is chosen across slices (dynamic programming), and the body is then
 * measured anterior to it.
 */
export interface SpineTrack {
  /** Working slice index z -> whether the spine was found there. */
  readonly found: Uint8Array;
  /** Body centre (working voxel coords, fractional), per slice; NaN where not found. */
  readonly bodyX: Float32Array;
  readonly bodyY: Float32Array;
  /** Anterior-posterior depth and left-right width of the body cross-section, mm (NaN where unknown). */
  readonly bodyDepthMm: Float32Array;
  readonly bodyWidthMm: Float32Array;
  /** Canal centre y (working voxels). */
  readonly canalY: Float32Array;
  /** Field of view edge reached by the body cross-section in this slice (cut by the scan edge). */
  readonly touchesEdge: Uint8Array;
  /** Slices [zFirst, zLast] of the longest continuous run where the spine was found; -1 if none. */
  readonly zFirst: number;
  readonly zLast: number;
}

/** Tissue thresholds at ~3 mm voxels, HU. CSF 0-15 HU, epidural fat < 0; cancellous bone > 50 even when osteoporotic. */
const CANAL_MAX_HU = 40;
/** Cortical/posterior-element bone at 3 mm partial volume reads well above 150 HU. */
const BONE_HU = 150;
/**
 * Bone in front of the canal that marks a vertebral body. 110 HU was tried for osteoporotic upper thoracic
 * bodies at 3 mm voxels (they stayed under 150 and the track stopped at T3-T5), but on the hard phantoms it
 * let the track wander onto enhanced vessels and ribs (labels 74.6% -> 59.4%, confident-wrong 0% -> 8%), so
 * the cortical threshold stays: a track that stops short is reported as a short spine, not mislabelled.
 */
const BODY_BONE_HU = 150;
/** Fat (subcutaneous/retroperitoneal) < -30 HU: marks the end of the body's anterior soft-tissue border. */
const FAT_HU = -20;
/** Anterior cortex of the body at ~3 mm: partial-volumed cortical bone still reads > ~130 HU. */
const ANTERIOR_CORTEX_HU = 130;

interface SliceOutline {
  xCenter: number;
  yAnterior: number;
  yPosterior: number;
  ok: boolean;
  /** The trunk runs off the left or right edge of the field in this slice, so xCenter is not its midline. */
  cutSideways: boolean;
}

export function sliceOutline(g: WorkingGrid, z: number): SliceOutline {
  const [nx, ny] = g.dims;
  const base = z * nx * ny;
  let sx = 0;
  let n = 0;
  let yA = -1;
  let yP = -1;
  let edgeRows = 0;
  let bodyRows = 0;
  for (let y = 0; y < ny; y++) {
    let rowCount = 0;
    for (let x = 0; x < nx; x++) {
      if (g.hu[base + x + nx * y] > -400) {
        sx += x;
        n++;
        rowCount++;
      }
    }
    // A row belongs to the body when a sizable run of it is tissue (not the thin table or blanket).
    if (rowCount * g.spacingMm[0] > 60) {
      if (yA < 0) yA = y;
      yP = y;
      bodyRows++;
      if (g.hu[base + nx * y] > -400 || g.hu[base + nx * y + nx - 1] > -400) edgeRows++;
    }
  }
  const cutSideways = bodyRows > 0 && edgeRows >= 0.3 * bodyRows;
  return { xCenter: n > 0 ? sx / n : nx / 2, yAnterior: yA, yPosterior: yP, ok: n > 0 && yA >= 0 && yP > yA, cutSideways };
}

/** Midline profile along y at slice z: mean HU over x in [x0-hw, x0+hw] and z-1..z+1. Written into out. */
export function midlineProfile(g: WorkingGrid, z: number, x0: number, hw: number, out: Float32Array): void {
  const [nx, ny, nz] = g.dims;
  const xa = Math.max(0, Math.round(x0) - hw);
  const xb = Math.min(nx - 1, Math.round(x0) + hw);
  const za = Math.max(0, z - 1);
  const zb = Math.min(nz - 1, z + 1);
  for (let y = 0; y < ny; y++) {
    let s = 0;
    let c = 0;
    for (let zz = za; zz <= zb; zz++) {
      const b = nx * (y + ny * zz);
      for (let x = xa; x <= xb; x++) {
        s += g.hu[b + x];
        c++;
      }
    }
    out[y] = s / c;
  }
}

/**
 * Canal candidates in one midline profile: a low run (CSF/fat) 4-30 mm long, with a run of >= 15 mm of
 * non-low tissue directly anterior (body or disc) containing or ending in bone, and bone within 30 mm posterior
 * (lamina / spinous process).
 */
export function canalCandidates(f: Float32Array, yMin: number, yMax: number, mmPerVoxel: number): CanalCandidate[] {
  const out: CanalCandidate[] = [];
  const minLow = Math.max(1, Math.round(4 / mmPerVoxel));
  const maxLow = Math.round(30 / mmPerVoxel);
  const minBody = Math.round(15 / mmPerVoxel);
  const maxBody = Math.round(60 / mmPerVoxel);
  const post = Math.round(30 / mmPerVoxel);
  let y = yMin;
  while (y <= yMax) {
    if (f[y] >= CANAL_MAX_HU) {
      y++;
      continue;
    }
    const start = y;
    while (y <= yMax && f[y] < CANAL_MAX_HU) y++;
    const end = y - 1;
    const len = end - start + 1;
    if (len < minLow || len > maxLow || start === yMin || y > yMax) continue;
    // Anterior run of non-low tissue.
    let a = start - 1;
    let bodyBone = 0;
    while (a >= 0 && f[a] >= CANAL_MAX_HU && start - a <= maxBody) {
      if (f[a] > BODY_BONE_HU) bodyBone++;
      a--;
    }
    const bodyLen = start - 1 - a;
    if (bodyLen < minBody || bodyBone === 0) continue;
    let postBone = false;
    for (let b = end + 1; b <= Math.min(f.length - 1, end + post); b++) if (f[b] > BONE_HU) postBone = true;
    if (!postBone) continue;
    // Body anterior edge: the most anterior bone-dense voxel (anterior cortex) reached from the canal through
    // continuous non-fat tissue, at least 12 mm and at most 60 mm in front of the canal.
    let front = start - minBody;
    for (let t = start - 1; t >= 0 && start - t <= maxBody; t--) {
      if (f[t] <= FAT_HU) break;
      if (f[t] >= ANTERIOR_CORTEX_HU && start - t >= Math.round(12 / mmPerVoxel)) front = t;
    }
    out.push({ x: 0, shadowed: false, y: (start + end) / 2, front: start, bodyFront: front, score: Math.min(bodyLen, Math.round(40 / mmPerVoxel)) });
  }
  const shadowReach = 70 / mmPerVoxel;
  for (const c of out) c.shadowed = out.some((o) => o.y > c.y && o.y - c.y <= shadowReach);
  return out;
}

/** Running median of finite values over a window of +-half slices; NaN stays NaN where no values. */
export function runningMedian(a: Float32Array, half: number): Float32Array {
  const out = new Float32Array(a.length).fill(NaN);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) continue;
    const w: number[] = [];
    for (let j = Math.max(0, i - half); j <= Math.min(a.length - 1, i + half); j++) if (Number.isFinite(a[j])) w.push(a[j]);
    out[i] = median(w);
  }
  return out;
}

/**
 * Bone mass per column x in the dorsal part of the body outline, summed over slices z-w..z+w so ribs,
 * iliac wings and facets (short in z) weigh less than the continuous column. Written into col.
 */
function boneColumnProfile(g: WorkingGrid, z: number, o: SliceOutline, col: Float64Array): void {
  const [nx, ny, nz] = g.dims;
  col.fill(0);
  const w = Math.max(1, Math.round(15 / g.spacingMm[2]));
  const ya = Math.max(0, Math.round(o.yAnterior + 0.3 * (o.yPosterior - o.yAnterior)));
  for (let zz = Math.max(0, z - w); zz <= Math.min(nz - 1, z + w); zz++) {
    const base = zz * nx * ny;
    for (let y = ya; y <= o.yPosterior; y++) {
      const row = base + nx * y;
      for (let x = 0; x < nx; x++) {
        const h = g.hu[row + x];
        if (h > BONE_HU) col[x] += Math.min(h, 1000) - BONE_HU;
      }
    }
  }
}

/** Where the spine sits in x: heaviest bone column within 40 mm of the body outline's centre. */
export function spineColumnX(g: WorkingGrid, z: number, o: SliceOutline, col = new Float64Array(g.dims[0])): number {
  const nx = g.dims[0];
  boneColumnProfile(g, z, o, col);
  const halfMm = 40;
  const xa = Math.max(0, Math.round(o.xCenter - halfMm / g.spacingMm[0]));
  const xb = Math.min(nx - 1, Math.round(o.xCenter + halfMm / g.spacingMm[0]));
  // Smooth over +-12 mm (about a vertebral body's half width); a mild pull to the midline breaks ties
  // against a heavy iliac crest or rib head on one side.
  const hw = Math.max(1, Math.round(12 / g.spacingMm[0]));
  let bestX = Math.round(o.xCenter);
  let bestV = -1;
  for (let x = xa; x <= xb; x++) {
    let s = 0;
    for (let t = Math.max(0, x - hw); t <= Math.min(nx - 1, x + hw); t++) s += col[t];
    const dMm = (x - o.xCenter) * g.spacingMm[0];
    s *= 1 - 0.5 * (dMm / halfMm) ** 2;
    if (s > bestV) {
      bestV = s;
      bestX = x;
    }
  }
  return bestX;
}

/** Left-right extent of the body at row y (mean over +-1 row): the run of non-fat tissue around x0, mm. */
function bodyRowExtent(g: WorkingGrid, z: number, x0: number, y0: number): { center: number; widthMm: number; touchesEdge: boolean } {
  const [nx, ny] = g.dims;
  const base = z * nx * ny;
  const v = (x: number): number => {
    let s = 0;
    let c = 0;
    for (let y = Math.max(0, y0 - 1); y <= Math.min(ny - 1, y0 + 1); y++) {
      s += g.hu[base + x + nx * y];
      c++;
    }
    return s / c;
  };
  // The body's lateral cortex borders the psoas (~50 HU) and fat; stop at < 60 HU or after 35 mm.
  const maxHalf = Math.round(35 / g.spacingMm[0]);
  let x1 = Math.round(x0);
  while (x1 - 1 >= 0 && x0 - x1 < maxHalf && v(x1 - 1) >= 60) x1--;
  let x2 = Math.round(x0);
  while (x2 + 1 < nx && x2 - x0 < maxHalf && v(x2 + 1) >= 60) x2++;
  return { center: (x1 + x2) / 2, widthMm: (x2 - x1 + 1) * g.spacingMm[0], touchesEdge: x1 === 0 || x2 === nx - 1 };
}

/**
 * Canal candidates of every slice, from midline profiles through and up to 15 mm either side of the bone
 * column's estimated x (the estimate can sit on a pedicle); with `acrossWidth`, across the whole width.
 */
function canalCandidatesPerSlice(g: WorkingGrid, outlines: SliceOutline[], colXs: Float32Array, acrossWidth: boolean): CanalCandidate[][] {
  const [nx, ny, nz] = g.dims;
  const prof = new Float32Array(ny);
  const cands: CanalCandidate[][] = [];
  const usualX = median(Array.from(colXs).filter(Number.isFinite));
  const hw = Math.max(1, Math.round(4 / g.spacingMm[0]));
  const step = Math.max(1, Math.round(3 / g.spacingMm[0]));
  const reach = acrossWidth ? Math.ceil(nx / 2) : Math.round(15 / g.spacingMm[0]);
  for (let z = 0; z < nz; z++) {
    const o = outlines[z];
    if (!o.ok || !Number.isFinite(colXs[z])) {
      cands.push([]);
      continue;
    }
    const yMin = Math.max(0, Math.round(o.yAnterior + 0.25 * (o.yPosterior - o.yAnterior)));
    const list: CanalCandidate[] = [];
    // Around the slice's own bone-column estimate, and also around the column's usual place where the estimate
    // has left it: a contrast-filled aorta and heart beside the upper thoracic spine outweigh it in the bone
    // profile, and the estimate jumped 36-41 mm onto them for 30 slices (hard phantoms 20017, 20112: T1-T4 never
    // found), so the canal there was never looked for. The canal path (canal-path.ts) keeps whichever continues
    // the column.
    const centres = acrossWidth ? [nx / 2] : Math.abs(colXs[z] - usualX) * g.spacingMm[0] > 15 ? [colXs[z], usualX] : [colXs[z]];
    for (const centre of centres) {
      for (let dx = -reach; dx <= reach; dx += step) {
        const x = Math.round(centre) + dx;
        if (x < hw || x >= nx - hw) continue;
        midlineProfile(g, z, x, hw, prof);
        for (const c of canalCandidates(prof, yMin, Math.max(yMin, o.yPosterior), g.spacingMm[1])) list.push({ ...c, x });
      }
    }
    cands.push(list);
  }
  return cands;
}

/** A canal path through the candidates, one choice per slice, and its longest continuous run [a, b] (slices; a < 0 if none). */
interface CanalRun {
  cands: CanalCandidate[][];
  choice: Int32Array;
  a: number;
  b: number;
}

/**
 * The spine is unpaired and lies on the trunk's midline; a canal-like gap far to one side with its mirror image
 * across the midline (same depth, within 9 mm) in most slices is a paired structure: a hip joint between the
 * femoral head and the acetabulum, where the hips are wider than the field (the TotalSegmentator example cropped
 * from L4 down through the pelvis: the track ran 60 mm along the right hip, and S2-S3 beside it were named L4-L5).
 * Only candidates over 25 mm off the outline's centre are tested, so a canal on the midline is never "mirrored".
 */
const MIRRORED_SHARE_MAX = 0.5;
const MIRROR_TEST_OFF_MIDLINE_MM = 25;
const MIRROR_MATCH_MM = 9;

/** Share of a run's off-midline slices whose chosen candidate has a mirror-image candidate (above). */
function mirroredShare(g: WorkingGrid, run: CanalRun, outlines: SliceOutline[]): number {
  const [sx, sy] = g.spacingMm;
  let tested = 0;
  let mirrored = 0;
  for (let z = run.a; z <= run.b; z++) {
    const c = run.choice[z] >= 0 ? run.cands[z][run.choice[z]] : undefined;
    const xc = outlines[z].xCenter;
    if (!c || Math.abs(c.x - xc) * sx <= MIRROR_TEST_OFF_MIDLINE_MM) continue;
    tested++;
    const mx = 2 * xc - c.x;
    if (run.cands[z].some((m) => Math.hypot((m.x - mx) * sx, (m.y - c.y) * sy) <= MIRROR_MATCH_MM)) mirrored++;
  }
  return tested > 0 ? mirrored / tested : 0;
}

/** The canal path through the candidates and its longest continuous run. */
function longestCanal(g: WorkingGrid, cands: CanalCandidate[][]): CanalRun {
  const choice = chooseCanalPath(cands, g.spacingMm[1], g.spacingMm[2]);
  return { cands, choice, ...continuousRun(choice, cands, g) };
}

export function findSpineTrack(g: WorkingGrid): SpineTrack {
  const [nx, ny, nz] = g.dims;
  const found = new Uint8Array(nz);
  const bodyX = new Float32Array(nz).fill(NaN);
  const bodyY = new Float32Array(nz).fill(NaN);
  const depth = new Float32Array(nz).fill(NaN);
  const width = new Float32Array(nz).fill(NaN);
  const canalY = new Float32Array(nz).fill(NaN);
  const edge = new Uint8Array(nz);
  const colX = new Float32Array(nz).fill(NaN);
  const outlines: SliceOutline[] = [];
  for (let z = 0; z < nz; z++) {
    const o = sliceOutline(g, z);
    outlines.push(o);
    if (o.ok) colX[z] = spineColumnX(g, z, o);
  }
  const colXs = runningMedian(colX, Math.max(1, Math.round(10 / g.spacingMm[2])));
  let canal = longestCanal(g, canalCandidatesPerSlice(g, outlines, colXs, false));
  // Where the trunk runs off the side of the field, the outline's centre is not the midline and the bone-column
  // estimate can settle on a scapula while the spine lies by the field's edge (the Philips chest CT in a 200 mm
  // field 70-80 mm to one side: "levels" on the scapula, seven named at 0.9; in a 260 mm field, the track lost
  // above T4 where the shoulders widen the trunk). The canal is then also looked for across the whole width of
  // every slice, and the longer continuous canal is kept: the whole width alone let a canal-like gap elsewhere
  // break the track of a small heart field (hard phantom 20003, T9-T11 lost).
  if (outlines.some((o) => o.ok && o.cutSideways)) {
    const across = longestCanal(g, canalCandidatesPerSlice(g, outlines, colXs, true));
    if (across.b - across.a > canal.b - canal.a && mirroredShare(g, across, outlines) < MIRRORED_SHARE_MAX) canal = across;
  }
  const { cands, choice, a: bestA, b: bestB } = canal;
  if (bestA < 0 || (bestB - bestA + 1) * g.spacingMm[2] < 40) {
    return { found, bodyX, bodyY, bodyDepthMm: depth, bodyWidthMm: width, canalY, touchesEdge: edge, zFirst: -1, zLast: -1 };
  }
  const rawCanal = new Float32Array(nz).fill(NaN);
  const rawFront = new Float32Array(nz).fill(NaN);
  const rawX = new Float32Array(nz).fill(NaN);
  const rawBodyFront = new Float32Array(nz).fill(NaN);
  for (let z = bestA; z <= bestB; z++) {
    const c = choice[z] >= 0 ? cands[z][choice[z]] : undefined;
    if (!c) continue;
    rawCanal[z] = c.y;
    rawX[z] = c.x;
    rawFront[z] = c.front;
    rawBodyFront[z] = c.bodyFront;
  }
  const sHalf = Math.max(1, Math.round(6 / g.spacingMm[2]));
  const canalS = interpolateGaps(runningMedian(rawCanal, sHalf), bestA, bestB);
  const frontS = interpolateGaps(runningMedian(rawFront, sHalf), bestA, bestB);
  const xS = interpolateGaps(runningMedian(rawX, sHalf), bestA, bestB);
  // Body depth varies slowly; a wider median rejects disc-level and aorta-merged slices.
  const depthVox = new Float32Array(nz).fill(NaN);
  for (let z = bestA; z <= bestB; z++) if (Number.isFinite(rawBodyFront[z])) depthVox[z] = rawFront[z] - rawBodyFront[z];
  rejectDepthOutliers(depthVox, bestA, bestB);
  const depthS = interpolateGaps(runningMedian(depthVox, Math.max(2, Math.round(15 / g.spacingMm[2]))), bestA, bestB);
  for (let z = bestA; z <= bestB; z++) {
    found[z] = 1;
    canalY[z] = canalS[z];
    const dVox = Math.max(15 / g.spacingMm[1], Math.min(55 / g.spacingMm[1], depthS[z]));
    depth[z] = dVox * g.spacingMm[1];
    const yc = frontS[z] - dVox / 2;
    bodyY[z] = yc;
    const ext = bodyRowExtent(g, z, xS[z], Math.round(yc));
    width[z] = ext.widthMm;
    bodyX[z] = ext.center;
    edge[z] = ext.touchesEdge ? 1 : 0;
  }
  // The body's left-right centre is smooth along the spine; the row extent is noisy at discs and TPs.
  const bx = runningMedian(bodyX, sHalf);
  const bw = runningMedian(width, Math.max(2, Math.round(15 / g.spacingMm[2])));
  for (let z = bestA; z <= bestB; z++) {
    bodyX[z] = bx[z];
    width[z] = bw[z];
  }
  void nx;
  // Past an end where the field cuts the canal away, on along the bodies (body-follow.ts).
  const bodies = { found, bodyX, bodyY, bodyDepthMm: depth, bodyWidthMm: width };
  const zLast = followBodies(g, bodies, bestB, 1);
  const zFirst = followBodies(g, bodies, bestA, -1);
  return { found, bodyX, bodyY, bodyDepthMm: depth, bodyWidthMm: width, canalY, touchesEdge: edge, zFirst, zLast };
}

/**
 * Body depth changes slowly and nearly linearly along the column (~16 mm at T1 to ~33 mm at L3: Panjabi et al.,
 * Spine 1991/1992), so a robust straight line through the per-slice depths (Theil-Sen: median of pairwise
 * slopes) is a fair expectation; depths far off it are set to NaN. The typical outlier is a contrast-filled
 * aorta or an anterior osteophyte read as the anterior cortex over several centimetres, which a running
 * median alone keeps when it spans more than half its window (and which then inflates the disc-spacing floor).
 */
export function rejectDepthOutliers(depth: Float32Array, a: number, b: number, lo = 0.75, hi = 1.3): void {
  const zs: number[] = [];
  for (let z = a; z <= b; z++) if (Number.isFinite(depth[z])) zs.push(z);
  if (zs.length < 6) return;
  // Pairs at least a few slices apart (noise on neighbours makes wild slopes); a bounded, deterministic subsample.
  const step = Math.max(1, Math.floor(zs.length / 60));
  const slopes: number[] = [];
  for (let i = 0; i < zs.length; i += step) {
    for (let j = i + 3; j < zs.length; j += step) slopes.push((depth[zs[j]] - depth[zs[i]]) / (zs[j] - zs[i]));
  }
  if (slopes.length === 0) return;
  const slope = median(slopes);
  const intercept = median(zs.map((z) => depth[z] - slope * z));
  for (const z of zs) {
    const fit = intercept + slope * z;
    if (!(fit > 0) || depth[z] > hi * fit || depth[z] < lo * fit) depth[z] = NaN;
  }
}

/** Linear interpolation over NaN gaps inside [a,b]; ends take the nearest finite value. */
export function interpolateGaps(v: Float32Array, a: number, b: number): Float32Array {
  const out = new Float32Array(v);
  let prev = -1;
  for (let z = a; z <= b; z++) {
    if (!Number.isFinite(out[z])) continue;
    if (prev < 0) for (let t = a; t < z; t++) out[t] = out[z];
    else for (let t = prev + 1; t < z; t++) out[t] = out[prev] + ((out[z] - out[prev]) * (t - prev)) / (z - prev);
    prev = z;
  }
  if (prev >= 0) for (let t = prev + 1; t <= b; t++) out[t] = out[prev];
  return out;
}
