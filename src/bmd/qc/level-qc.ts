import type { ExclusionReason } from '../report.js';
import type { BodyHeightsMm } from '../spine/heights.js';
import { median } from '../median.js';

/**
 * Per-level exclusion rules. The first rule that fires decides the reason; all remarks are kept as detail.
 * Order: what makes the measurement meaningless first (coverage, label, ROI size), then what makes the
 * bone non-representative of systemic BMD (fracture, lesion).
 */
export interface LevelQcInput {
  level: string;
  labelConfidence: number;
  partialCoverage: boolean;
  roiVoxels: number;
  roiVolumeMm3: number;
  roiMedianHu: number | null;
  roiSdHu: number | null;
  heightsMm: BodyHeightsMm | null;
  /** Slice spacing of the height measurement, mm: losses within two slices are not called fractures. */
  heightResolutionMm: number;
  /** Median posterior height of the measured levels within two of this one, mm (null when none). */
  neighbourPosteriorMm?: number | null;
}

export interface LevelQcResult {
  reason: ExclusionReason | null;
  detail: string | null;
}

/** Below this a label is not trusted enough to report a value under it (DESIGN: never guess silently). */
export const MIN_LABEL_CONFIDENCE = 0.5;
/** Minimum ROI volume: 500 mm^3 (~0.5 mL; a 3 mm-voxel ROI then holds ~18 voxels, a 1 mm one ~500). */
export const MIN_ROI_VOLUME_MM3 = 500;
export const MIN_ROI_VOXELS = 10;
/** Genant semiquantitative grading: grade 1 (mild) fracture = 20-25% height reduction (JBMR 1993). */
export const FRACTURE_HEIGHT_LOSS = 0.2;
/**
 * Heights are read on the straightened spine, but an endplate is only as sharp as the slices: on phantoms
 * with 24-40% wedges the measured loss was within ~10 points of the truth at 1-2 mm slices, while at 3 mm an
 * intact body read 70% and at 5 mm the heights scattered by +-50%. Above 3 mm no fracture is called (the
 * report warns that no screen was done), and the posterior wall must agree with the neighbours'.
 */
export const MAX_FRACTURE_SLICE_MM = 3;
/** A wedge or crush keeps the posterior wall: one off its neighbours' by more than this is a misreading. */
const POSTERIOR_AGREEMENT = 0.25;

export function heightLoss(h: BodyHeightsMm): { fraction: number; where: 'anterior' | 'middle' } {
  const ref = h.posterior;
  const a = ref > 0 ? 1 - h.anterior / ref : 0;
  const m = ref > 0 ? 1 - h.middle / ref : 0;
  return a >= m ? { fraction: a, where: 'anterior' } : { fraction: m, where: 'middle' };
}

export function levelExclusion(q: LevelQcInput): LevelQcResult {
  if (q.partialCoverage) {
    return { reason: 'partial-coverage', detail: `${q.level} is cut by the edge of the scan; its body is not fully covered.` };
  }
  if (q.labelConfidence < MIN_LABEL_CONFIDENCE) {
    return { reason: 'label-uncertain', detail: `The label ${q.level} is uncertain (confidence ${q.labelConfidence.toFixed(2)}); the value is not used.` };
  }
  if (q.roiVoxels < MIN_ROI_VOXELS || q.roiVolumeMm3 < MIN_ROI_VOLUME_MM3 || q.roiMedianHu === null) {
    return { reason: 'roi-too-small', detail: `The trabecular ROI of ${q.level} holds only ${q.roiVoxels} voxels (${Math.round(q.roiVolumeMm3)} mm3).` };
  }
  if (q.heightsMm) {
    const loss = heightLoss(q.heightsMm);
    const absMm = loss.fraction * q.heightsMm.posterior;
    // Each height has two ends, each read to about one slice, and the loss is a difference of two heights:
    // a loss within two slices cannot be told from sampling, whatever its percentage (at 4 mm slices the
    // heights of a real abdomen scan scattered by 5-8 mm between neighbouring levels).
    const wallAgrees = !q.neighbourPosteriorMm || Math.abs(q.heightsMm.posterior / q.neighbourPosteriorMm - 1) <= POSTERIOR_AGREEMENT;
    const sharpEnough = q.heightResolutionMm <= MAX_FRACTURE_SLICE_MM;
    if (loss.fraction > FRACTURE_HEIGHT_LOSS && absMm > 2 * q.heightResolutionMm && wallAgrees && sharpEnough) {
      return {
        reason: 'fracture',
        detail: `${q.level}: ${loss.where} height ${Math.round(loss.fraction * 100)}% lower than posterior (Genant grade >= 1 deformity, > 20%).`,
      };
    }
  }
  return { reason: null, detail: null };
}

/**
 * Lesion screen across levels: a level whose ROI median is far from the median of its neighbours (blastic
 * metastases read hundreds of HU higher, lytic ones lower), or whose ROI is much more heterogeneous.
 * Threshold: > max(45 HU, 35%) off the neighbours, or robust SD > 2x the neighbours' and > 50 HU. Adjacent normal
 * lumbar levels differ by ~5-10% in trabecular BMD (QCT reference data), so 35% is far outside that.
 */
export function lesionFlags(
  levels: { level: string; medianHu: number | null; sdHu: number | null; rawSdHu?: number | null; eligible: boolean }[],
): (string | null)[] {
  return levels.map((lv, k) => {
    if (!lv.eligible || lv.medianHu === null) return null;
    if (lv.rawSdHu != null && lv.rawSdHu > ABS_MAX_ROI_SD_HU) {
      return `${lv.level}: trabecular ROI SD ${Math.round(lv.rawSdHu)} HU is far above that of trabecular bone (~20-60 HU with CT noise): the ROI holds an endplate, cortex or a lesion.`;
    }
    const neigh: { m: number; s: number; raw: number }[] = [];
    // +-3 levels: at the end of the column a single lesioned neighbour cannot then set the reference.
    for (let d = -3; d <= 3; d++) {
      if (d === 0) continue;
      const o = levels[k + d];
      if (o && o.eligible && o.medianHu !== null) neigh.push({ m: o.medianHu, s: o.sdHu ?? 0, raw: o.rawSdHu ?? o.sdHu ?? 0 });
    }
    if (neigh.length < 2) return null;
    const med = median(neigh.map((n) => n.m));
    const sdMed = median(neigh.map((n) => n.s));
    const diff = lv.medianHu - med;
    if (Math.abs(diff) > Math.max(45, 0.35 * Math.abs(med))) {
      return `${lv.level}: trabecular ROI ${Math.round(lv.medianHu)} HU vs ${Math.round(med)} HU in neighbouring levels (${diff > 0 ? 'sclerotic/blastic' : 'lytic'} lesion suspected).`;
    }
    if (lv.sdHu !== null && lv.sdHu > 2 * sdMed && lv.sdHu > 50) {
      return `${lv.level}: trabecular ROI is heterogeneous (SD ${Math.round(lv.sdHu)} HU vs ${Math.round(sdMed)} HU in neighbours): focal lesion suspected.`;
    }
    // Whole-ROI SD far above anything trabecular bone shows (> 120 HU, 3x the neighbours): part of the ROI
    // lies on an endplate, cortex or a dense focus; its median cannot be trusted as trabecular density.
    const rawMed = median(neigh.map((n) => n.raw));
    if (lv.rawSdHu != null && lv.rawSdHu > 120 && lv.rawSdHu > 3 * rawMed) {
      return `${lv.level}: trabecular ROI is heterogeneous (SD ${Math.round(lv.rawSdHu)} HU vs ${Math.round(rawMed)} HU in neighbours): focal lesion, or the ROI touches an endplate.`;
    }
    return null;
  });
}

/** Whole-ROI SD beyond which the ROI cannot be homogeneous trabecular bone, whatever the neighbours show. */
export const ABS_MAX_ROI_SD_HU = 130;

