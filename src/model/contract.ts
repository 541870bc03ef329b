/**
 * The input/output contract of the vBMD network (models/MODEL_CARD.md "Input contract"): one place that the patch
 * exporter (training data), the ONNX runner (pipeline) and models/MODEL_CARD.md all follow. Python never
 * re-implements this: training reads patches the TypeScript exporter wrote with these constants.
 *
 * Patch: a cube of PATCH_VOXELS^3 voxels at PATCH_SPACING_MM isotropic (48 mm: a lumbar body is ~40-50 mm wide,
 * ~30-35 mm deep and ~25-30 mm tall, so the whole body and its endplates fit), centred on the engine's vertebral
 * body centre, axis-aligned in patient space whatever the scan's orientation:
 *   tensor [N, 1, D, H, W]; D runs inferior -> superior (+S), H anterior -> posterior (+P), W right -> left (+L).
 * Voxel (d,h,w) has its centre at centreMm + ((w, h, d) - (PATCH_VOXELS - 1) / 2) * PATCH_SPACING_MM along (L, P, S).
 * Values: calibrated density (mg/cm3 K2HPO4) = (HU - intercept) / slope with the scan's calibration, trilinear
 * resampling; points outside the scanned volume take the density of PADDING_HU (air).
 * Network input = clamp(density, INPUT_CLIP_MG_CM3) / INPUT_SCALE_MG_CM3. The readout uses the unclipped density.
 */
export const PATCH_VOXELS = 32;
export const PATCH_SPACING_MM = 1.5;
export const INPUT_CLIP_MG_CM3: readonly [number, number] = [-200, 1200];
export const INPUT_SCALE_MG_CM3 = 300;

/** ONNX graph names. */
export const INPUT_NAME = 'density';
/** [N,1,D,H,W] logits of "trabecular bone to measure" (cortex, endplates, lesions and outside excluded). */
export const ROI_OUTPUT_NAME = 'roi_logits';
/** [N,1] vBMD in mg/cm3 (scaled inside the graph), the regression head. */
export const VBMD_OUTPUT_NAME = 'vbmd';
/** [N,3] logits in CLASS_ORDER. */
export const CLASS_OUTPUT_NAME = 'class_logits';
export const CLASS_ORDER = ['normal', 'osteopenia', 'osteoporosis'] as const;
