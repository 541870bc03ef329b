import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { VERTEBRA_LEVELS, vertebraLevel, type VertebraLevel } from '../../bmd/report.js';
import { readNiftiFile } from '../../imaging/nifti.js';
import { patientMmToVoxel, voxelToPatientMm, type Vec3, type Volume } from '../../imaging/volume.js';
import { VbmdError } from '../../util/errors.js';

/**
 * Reference vertebral levels of a real CT, made by a reader (rib counting) or a segmentation, in the patient
 * coordinates (LPS mm) of the original scan. Variants of the scan (crops, thicker slices, a moved patient) are
 * judged by mapping the engine's level centres back into this frame.
 */
export interface ReferenceLevel {
  level: VertebraLevel;
  /** Centre of the vertebral body, LPS mm, original frame (of the whole vertebra where only that is known). */
  centerMm: Vec3;
  /** centerMm is the body's centre; false where the reference has only the whole vertebra, arches included. */
  bodyCentre: boolean;
  /** Both endplates of the body lie inside the original scan. */
  full: boolean;
  /** Corners of a box holding the whole body (original frame): inside a variant when every corner is. */
  hullMm: Vec3[];
  /** The engine must report this body when it is fully covered; false for the sacrum, an anchor not a measured body. */
  mustReport: boolean;
}

export interface BodyHit {
  level: VertebraLevel;
  /** How far inside the reference body the point lies (mm); negative inside the slack of a rough reference. */
  depthMm: number;
}

export interface SpineReference {
  caseName: string;
  /** Cranial first. */
  levels: ReferenceLevel[];
  /** The reference body holding p (LPS mm, original frame), the deepest one where two overlap; null outside all. */
  bodyAt(p: Vec3): BodyHit | null;
}

export const levelIndex = (l: VertebraLevel): number => VERTEBRA_LEVELS.indexOf(l);

// ---------------------------------------------------------------------------------------------------------
// Reader reference: per level a centre and endplate z (philips-chest-ct/reference-levels.json).

const readerLevels = z.object({
  case: z.string(),
  levels: z
    .array(
      z.object({
        level: vertebraLevel,
        center_lps_mm: z.tuple([z.number(), z.number(), z.number()]),
        sup_z: z.number(),
        inf_z: z.number(),
        full: z.boolean(),
      }),
    )
    .min(2),
});

/** The reader gives endplate z to +-2 mm (its README), so a body's extent carries this slack. */
export const ENDPLATE_SLACK_MM = 2;
/**
 * A point belongs to a body when it lies within this distance (in-plane) of the line through the reader's
 * body centres. Thoracic bodies are 25-35 mm deep and 30-45 mm wide (Panjabi et al., Spine 1991), so 12 mm keeps
 * the point inside the body's trabecular core and out of the pedicles and the neighbouring soft tissue.
 */
export const BODY_CORE_RADIUS_MM = 12;
/** Half-size of the in-plane box that must be in view for a body to count as fully covered (widest thoracic body ~45 mm, plus margin). */
export const BODY_HALF_EXTENT_MM = 25;

/** Reader reference from the JSON of `../shared/data/real/philips-chest-ct/reference-levels.json`. */
export function readerReference(json: unknown): SpineReference {
  const parsed = readerLevels.safeParse(json);
  if (!parsed.success) throw new VbmdError('bad-input', `Reference levels are not in the expected form: ${parsed.error.issues[0]?.message ?? 'invalid'}.`);
  const rows = [...parsed.data.levels].sort((a, b) => b.center_lps_mm[2] - a.center_lps_mm[2]);
  for (const r of rows) {
    if (!(r.sup_z > r.inf_z)) throw new VbmdError('bad-input', `Reference level ${r.level}: sup_z must lie above inf_z.`);
  }
  // In-plane centre line through the body centres, linear in z between neighbours, constant beyond the ends.
  const lineAt = (zMm: number): [number, number] => {
    if (zMm >= rows[0].center_lps_mm[2]) return [rows[0].center_lps_mm[0], rows[0].center_lps_mm[1]];
    for (let i = 0; i + 1 < rows.length; i++) {
      const a = rows[i].center_lps_mm;
      const b = rows[i + 1].center_lps_mm;
      if (zMm <= a[2] && zMm >= b[2]) {
        const t = a[2] === b[2] ? 0 : (a[2] - zMm) / (a[2] - b[2]);
        return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
      }
    }
    const last = rows[rows.length - 1].center_lps_mm;
    return [last[0], last[1]];
  };
  const levels: ReferenceLevel[] = rows.map((r) => {
    const hullMm: Vec3[] = [];
    for (const zMm of [r.inf_z - ENDPLATE_SLACK_MM, r.sup_z + ENDPLATE_SLACK_MM]) {
      const [cx, cy] = lineAt(zMm);
      for (const dx of [-1, 1]) for (const dy of [-1, 1]) hullMm.push([cx + dx * BODY_HALF_EXTENT_MM, cy + dy * BODY_HALF_EXTENT_MM, zMm]);
    }
    return { level: r.level, centerMm: [...r.center_lps_mm], bodyCentre: true, full: r.full, hullMm, mustReport: r.level !== 'S1' };
  });
  return {
    caseName: parsed.data.case,
    levels,
    bodyAt(p: Vec3): BodyHit | null {
      const [cx, cy] = lineAt(p[2]);
      const radial = Math.hypot(p[0] - cx, p[1] - cy);
      if (radial > BODY_CORE_RADIUS_MM) return null;
      let best: BodyHit | null = null;
      for (const r of rows) {
        if (p[2] > r.sup_z + ENDPLATE_SLACK_MM || p[2] < r.inf_z - ENDPLATE_SLACK_MM) continue;
        const depthMm = Math.min(BODY_CORE_RADIUS_MM - radial, r.sup_z - p[2], p[2] - r.inf_z);
        if (!best || depthMm > best.depthMm) best = { level: r.level, depthMm };
      }
      return best;
    },
  };
}

export async function readReaderReference(file: string): Promise<SpineReference> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new VbmdError('not-found', `Cannot read reference levels ${file}: ${(e as Error).message}.`);
  }
  try {
    return readerReference(JSON.parse(text));
  } catch (e) {
    if (e instanceof VbmdError) throw e;
    throw new VbmdError('bad-input', `${file} is not valid JSON.`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Segmentation reference: per-level label masks (TotalSegmentator).

/** A label mask and the level each label value stands for. */
export interface LabelMap {
  mask: Volume;
  levels: Partial<Record<number, VertebraLevel>>;
  /** The labels are vertebral bodies (false: whole vertebrae). */
  bodies: boolean;
}

/** How far around a point the nearest voxel of another label is looked for (voxels); depths are capped there. */
const DEPTH_SEARCH_VOXELS = 5;

/**
 * Reference from label masks, tried in order: the first map whose label at the point names a level wins (bodies
 * before whole vertebrae, so a whole-vertebra label only counts where no body label exists for that level).
 * A level touching the mask's border is not full. Masks must share one grid.
 */
export function maskReference(caseName: string, maps: LabelMap[]): SpineReference {
  const grid = maps[0].mask;
  const [nx, ny, nz] = grid.dims;
  for (const m of maps) {
    if (m.mask.dims.some((d, a) => d !== grid.dims[a])) throw new VbmdError('bad-input', `${caseName}: the reference masks do not share one grid.`);
  }
  const seen = new Map<VertebraLevel, { map: LabelMap; label: number; lo: Vec3; hi: Vec3; sum: Vec3; n: number }>();
  for (const map of maps) {
    const hu = map.mask.hu;
    for (let k = 0, n = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++, n++) {
          const level = map.levels[hu[n]];
          if (level === undefined) continue;
          let s = seen.get(level);
          if (s && s.map !== map) continue;
          if (!s) seen.set(level, (s = { map, label: hu[n], lo: [i, j, k], hi: [i, j, k], sum: [0, 0, 0], n: 0 }));
          const v: Vec3 = [i, j, k];
          for (let a = 0; a < 3; a++) {
            s.lo[a] = Math.min(s.lo[a], v[a]);
            s.hi[a] = Math.max(s.hi[a], v[a]);
            s.sum[a] += v[a];
          }
          s.n++;
        }
      }
    }
  }
  const levels: ReferenceLevel[] = [...seen.entries()]
    .sort((a, b) => levelIndex(a[0]) - levelIndex(b[0]))
    .map(([level, s]) => {
      const hullMm: Vec3[] = [];
      // Voxel edges, not centres: a crop keeping slices k0..k1 holds the body exactly when k0 <= lo and hi <= k1.
      for (const ci of [s.lo[0] - 0.5, s.hi[0] + 0.5]) for (const cj of [s.lo[1] - 0.5, s.hi[1] + 0.5]) for (const ck of [s.lo[2] - 0.5, s.hi[2] + 0.5]) hullMm.push(voxelToPatientMm(grid, ci, cj, ck));
      const full = s.lo.every((v) => v > 0) && s.hi[0] < nx - 1 && s.hi[1] < ny - 1 && s.hi[2] < nz - 1;
      const centerMm = voxelToPatientMm(grid, s.sum[0] / s.n, s.sum[1] / s.n, s.sum[2] / s.n);
      return { level, centerMm, bodyCentre: s.map.bodies, full, hullMm, mustReport: level !== 'S1' };
    });
  const owner = new Map([...seen.entries()].map(([level, s]) => [level, s] as const));
  const labelAt = (map: LabelMap, i: number, j: number, k: number): number =>
    i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz ? map.mask.hu[i + nx * (j + ny * k)] : 0;
  return {
    caseName,
    levels,
    bodyAt(p: Vec3): BodyHit | null {
      const v = patientMmToVoxel(grid, p);
      const [i, j, k] = v.map(Math.round);
      for (const map of maps) {
        const level = map.levels[labelAt(map, i, j, k)];
        if (level === undefined || owner.get(level)?.map !== map) continue;
        return { level, depthMm: depthInsideMm(map, labelAt(map, i, j, k), v, labelAt) };
      }
      return null;
    },
  };
}

/** Distance (mm) from v (voxel coordinates) to the nearest voxel centre of another label, capped by the search window. */
function depthInsideMm(map: LabelMap, label: number, v: Vec3, labelAt: (m: LabelMap, i: number, j: number, k: number) => number): number {
  const sp = map.mask.spacingMm;
  let best = (DEPTH_SEARCH_VOXELS + 1) * Math.min(sp[0], sp[1], sp[2]);
  for (let k = Math.floor(v[2]) - DEPTH_SEARCH_VOXELS; k <= Math.ceil(v[2]) + DEPTH_SEARCH_VOXELS; k++) {
    for (let j = Math.floor(v[1]) - DEPTH_SEARCH_VOXELS; j <= Math.ceil(v[1]) + DEPTH_SEARCH_VOXELS; j++) {
      for (let i = Math.floor(v[0]) - DEPTH_SEARCH_VOXELS; i <= Math.ceil(v[0]) + DEPTH_SEARCH_VOXELS; i++) {
        if (labelAt(map, i, j, k) === label) continue;
        best = Math.min(best, Math.hypot((i - v[0]) * sp[0], (j - v[1]) * sp[1], (k - v[2]) * sp[2]));
      }
    }
  }
  return best;
}

/**
 * TotalSegmentator example (`../shared/data/real/totalseg-example`): vertebral bodies 19 T12 ... 24 L5
 * (`vertebrae_pp_refined`), and from the whole-vertebra map 33 T11 and 26 S1, which have no body mask.
 */
export async function readTotalsegReference(dir: string): Promise<SpineReference> {
  const bodies = (await readNiftiFile(resolve(dir, 'vertebral_bodies.nii.gz'))).volume;
  const whole = (await readNiftiFile(resolve(dir, 'vertebrae_whole.nii.gz'))).volume;
  return maskReference('totalseg-example', [
    { mask: bodies, bodies: true, levels: { 19: 'T12', 20: 'L1', 21: 'L2', 22: 'L3', 23: 'L4', 24: 'L5' } },
    { mask: whole, bodies: false, levels: { 33: 'T11', 26: 'S1' } },
  ]);
}
