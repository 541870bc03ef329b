import type { Vec3, Volume } from '../imaging/volume.js';
import { MIN_ROI_VOLUME_MM3 } from '../bmd/qc/level-qc.js';
import { CLASS_ORDER, PATCH_SPACING_MM, PATCH_VOXELS } from './contract.js';
import { densityToNetworkInput, extractDensityPatch, maskedMeanDensity, type PatchCalibration } from './patch.js';
import type { ModelInference } from './model-runner.js';
import { encodeRoiMask, type EncodedRoiMask } from './roi-mask-codec.js';

export type ClassProbabilities = Record<(typeof CLASS_ORDER)[number], number>;

/** The network's reading of one vertebral body. */
export interface LevelInference {
  /** Mean unclipped calibrated density over the predicted ROI (roi_logits > 0), mg/cm3; null when that ROI is too small. */
  maskVbmdMgCm3: number | null;
  /** Voxels of the predicted ROI (PATCH_SPACING_MM^3 each). */
  maskVoxels: number;
  /** The regression head, mg/cm3 (cross-check). */
  regressionVbmdMgCm3: number;
  classProbabilities: ClassProbabilities;
  /** The predicted ROI itself (logit >= 0), packed for the report (DICOM SEG and key image). */
  mask?: EncodedRoiMask;
}

const VOXELS = PATCH_VOXELS ** 3;

/**
 * The predicted ROI must be as large as the geometric one must (src/bmd/qc/level-qc.ts MIN_ROI_VOLUME_MM3):
 * below that the mean rests on too few voxels for noise to average out (25 HU noise over 150 voxels, even
 * correlated over ~3 voxels, keeps the mean within ~3.5 HU).
 */
export const MIN_MODEL_ROI_VOXELS = Math.ceil(MIN_ROI_VOLUME_MM3 / PATCH_SPACING_MM ** 3);

/** A study's levels go to the worker in batches of at most this many patches (~128 KiB each). */
export const MAX_BATCH = 32;

/** Numerically stable softmax of `logits[offset .. offset+3]` in CLASS_ORDER. */
export function softmaxClasses(logits: Float32Array, offset = 0): ClassProbabilities {
  const k = CLASS_ORDER.length;
  let max = -Infinity;
  for (let i = 0; i < k; i++) max = Math.max(max, logits[offset + i]);
  const e = new Array<number>(k);
  let s = 0;
  for (let i = 0; i < k; i++) {
    e[i] = Math.exp(logits[offset + i] - max);
    s += e[i];
  }
  return { normal: e[0] / s, osteopenia: e[1] / s, osteoporosis: e[2] / s };
}

/**
 * Runs the network on the vertebral bodies centred at `centresMm` (LPS) of `volume`, with the scan's
 * calibration: one patch extraction per level (src/model/patch.ts, the training exporter's own code), then
 * inferDensityPatches.
 */
export async function inferLevels(
  runner: ModelInference,
  volume: Volume,
  centresMm: readonly Vec3[],
  calibration: PatchCalibration,
): Promise<LevelInference[]> {
  return inferDensityPatches(runner, centresMm.map((c) => extractDensityPatch(volume, c, calibration)));
}

/**
 * The network on unclipped density patches (contract layout), in batches of MAX_BATCH: the network input is
 * built straight into the batch buffer that is then moved to the worker; the readout uses the unclipped density.
 */
export async function inferDensityPatches(runner: ModelInference, densities: readonly Float32Array[]): Promise<LevelInference[]> {
  const out: LevelInference[] = [];
  for (let from = 0; from < densities.length; from += MAX_BATCH) {
    const part = densities.slice(from, from + MAX_BATCH);
    const n = part.length;
    const input = new Float32Array(n * VOXELS);
    part.forEach((d, i) => densityToNetworkInput(d, input.subarray(i * VOXELS, (i + 1) * VOXELS)));
    const res = await runner.infer(input, n);
    for (let i = 0; i < n; i++) {
      const mask = res.roiLogits.subarray(i * VOXELS, (i + 1) * VOXELS);
      // logit >= 0 <=> sigmoid >= 0.5: the ROI head's decision boundary.
      const m = maskedMeanDensity(part[i], mask, 0);
      const enough = m !== null && m.voxels >= MIN_MODEL_ROI_VOXELS;
      out.push({
        maskVbmdMgCm3: enough ? m.meanMgCm3 : null,
        maskVoxels: m?.voxels ?? 0,
        regressionVbmdMgCm3: res.vbmdMgCm3[i],
        classProbabilities: softmaxClasses(res.classLogits, i * CLASS_ORDER.length),
        mask: encodeRoiMask(mask, PATCH_VOXELS, PATCH_SPACING_MM, 0),
      });
    }
  }
  return out;
}
