import { VbmdError } from '../util/errors.js';
import { sliceKey, type DicomSlice } from './slice.js';
import type { HuArray, LoadedVolume } from '../imaging/volume.js';
import { HuVolumeBuilder, hasIntegerHu } from './stored-to-hu.js';
import { sharedFloat32 } from '../imaging/shared-memory.js';
import { planVolume, type AssembleOptions, type VolumePlan } from './volume-plan.js';

export { HuVolumeBuilder, hasIntegerHu, storedToHu } from './stored-to-hu.js';
export { planVolume, type AssembleOptions, type VolumePlan } from './volume-plan.js';

/**
 * One series' slices -> a HU volume on a regular grid in LPS (DESIGN.md "Volume"). Slices are ordered by
 * ImagePositionPatient projected on the slice normal (row x column cosine, PS3.3 C.7.6.2.1.1), and the
 * slice spacing is measured from those positions, never taken from SliceThickness (which is the
 * reconstructed thickness and may differ from the spacing, e.g. overlapping reconstructions).
 * Rejects with a VbmdError that says what is wrong and where: mixed sizes, spacings or orientations,
 * duplicate positions or interleaved series, gaps, irregular spacing, gantry tilt (sheared stacks).
 */
export function assembleVolume(slices: DicomSlice[], source: string, options: AssembleOptions = {}): LoadedVolume {
  const plan = planVolume(slices, source, options);
  const hu = new HuVolumeBuilder(plan.dims[0] * plan.dims[1] * plan.dims[2], plan.order.every(hasIntegerHu));
  for (let k = 0; k < plan.order.length; k++) placeSlice(plan, plan.order[k], k, hu);
  return finishVolume(plan, hu.hu);
}

/**
 * Converts one decoded slice (the k-th of plan.order, or a fresh parse of the same instance) into its
 * place in `hu`. Checks it is the instance and size the plan expects.
 */
export function placeSlice(plan: VolumePlan, slice: DicomSlice, k: number, hu: HuVolumeBuilder): void {
  const expected = plan.order[k];
  const plane = plan.dims[0] * plan.dims[1];
  if (sliceKey(slice) !== sliceKey(expected)) {
    throw new VbmdError('bad-input', `${slice.source} changed while it was being read (instance ${sliceKey(slice)}, expected ${sliceKey(expected)}); load it again.`);
  }
  if (slice.columns !== plan.dims[0] || slice.rows !== plan.dims[1] || slice.pixels.length < plane) {
    throw new VbmdError('bad-input', `${slice.source} has ${slice.pixels.length} pixels, not the ${plan.dims[0]}x${plan.dims[1]} of its series.`);
  }
  hu.put(slice, plan.gridIndex[k] * plane, plane);
}

/**
 * Fills the gaps (linear interpolation between the neighbours) and wraps up the LoadedVolume. Interpolated
 * HU are fractional, so a volume with gaps is Float32 (an int16 one is promoted first, exactly).
 */
export function finishVolume(plan: VolumePlan, volumeHu: HuArray): LoadedVolume {
  let hu = volumeHu;
  if (plan.gaps.length > 0 && hu instanceof Int16Array) {
    const f = sharedFloat32(hu.length);
    f.set(hu); // native int16 -> float32 conversion, exact
    hu = f;
  }
  const plane = plan.dims[0] * plan.dims[1];
  for (const g of plan.gaps) {
    const a = plan.gridIndex[g.after];
    const b = plan.gridIndex[g.after + 1];
    for (let m = a + 1; m < b; m++) {
      const t = (m - a) / (b - a);
      const oa = a * plane;
      const ob = b * plane;
      const om = m * plane;
      for (let n = 0; n < plane; n++) hu[om + n] = hu[oa + n] * (1 - t) + hu[ob + n] * t;
    }
  }
  return {
    volume: { hu, dims: plan.dims, spacingMm: plan.spacingMm, originMm: plan.originMm, direction: plan.direction },
    meta: plan.meta,
  };
}
