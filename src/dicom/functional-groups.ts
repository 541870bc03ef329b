import type { DataSet } from 'dicom-parser';
import { VbmdError } from '../util/errors.js';
import type { Vec3 } from '../imaging/volume.js';
import { firstItem, items, multi, num, str } from './dataset-values.js';
import type { DicomSliceHeader } from './slice.js';

/**
 * Multi-frame Functional Groups (PS3.3 C.7.6.16), as Enhanced CT (1.2.840.10008.5.1.4.1.1.2.1) and
 * Legacy Converted Enhanced CT (.2.2) carry them: each frame's geometry and rescale sit in its item of the
 * Per-frame Functional Groups Sequence, or, when equal for all frames, once in the Shared Functional
 * Groups Sequence. A frame's macro is looked up per frame first, then shared (C.7.6.16.1).
 */
const SHARED = 'x52009229';
const PER_FRAME = 'x52009230';
const PIXEL_MEASURES = 'x00289110';
const PLANE_POSITION = 'x00209113';
const PLANE_ORIENTATION = 'x00209116';
const PIXEL_VALUE_TRANSFORMATION = 'x00289145';
const CT_XRAY_DETAILS = 'x00189325';
const CT_ACQUISITION_DETAILS = 'x00189304';
const CONTRAST_AGENT_SEQUENCE = 'x00180012';

/** One header per frame: the instance's header with each frame's position, orientation, spacing and rescale. */
export function frameHeaders(ds: DataSet, base: DicomSliceHeader, source: string): DicomSliceHeader[] {
  const frames = base.numberOfFrames;
  const shared = firstItem(ds, SHARED);
  const perFrame = items(ds, PER_FRAME);
  if (!shared && perFrame.length === 0) {
    if (frames <= 1) return [base];
    // Without functional groups nothing says where frames 2..n lie (CT Image Storage has no multi-frame
    // geometry): guessing a direction could stack the patient upside down.
    throw new VbmdError(
      'unsupported',
      `${source} is a multi-frame image (${frames} frames) without per-frame positions (no Per-frame Functional Groups Sequence, PS3.3 C.7.6.16), so its frames cannot be placed in space; export the series as single-frame CT images or as Enhanced CT.`,
    );
  }
  if (perFrame.length !== frames) {
    throw new VbmdError('bad-input', `${source} has ${perFrame.length} items in its Per-frame Functional Groups Sequence for ${frames} frames; the file is corrupt.`);
  }
  const instance = instanceFields(ds, shared, perFrame[0], base);
  const out: DicomSliceHeader[] = [];
  for (let f = 0; f < frames; f++) {
    const macro = (tag: string): DataSet | undefined => firstItem(perFrame[f], tag) ?? firstItem(shared, tag);
    const measures = macro(PIXEL_MEASURES);
    const ps = measures && multi(measures, 'x00280030', 2);
    const position = macro(PLANE_POSITION);
    const ipp = position && multi(position, 'x00200032', 3);
    const orientation = macro(PLANE_ORIENTATION);
    const iop = orientation && multi(orientation, 'x00200037', 6);
    const transform = macro(PIXEL_VALUE_TRANSFORMATION);
    out.push({
      ...base,
      ...instance,
      frameNumber: f + 1,
      pixelSpacingMm: ps ? [ps[0], ps[1]] : base.pixelSpacingMm,
      sliceThicknessMm: (measures && num(measures, 'x00180050')) ?? base.sliceThicknessMm,
      imagePositionMm: ipp ? (ipp as Vec3) : base.imagePositionMm,
      imageOrientation: iop ? (iop as [number, number, number, number, number, number]) : base.imageOrientation,
      rescaleSlope: (transform && num(transform, 'x00281053')) ?? base.rescaleSlope,
      rescaleIntercept: (transform && num(transform, 'x00281052')) ?? base.rescaleIntercept,
    });
  }
  return out;
}

/** Instance-wide values that Enhanced CT moves from the top level into functional groups or code sequences. */
function instanceFields(ds: DataSet, shared: DataSet | undefined, first: DataSet | undefined, base: DicomSliceHeader): Partial<DicomSliceHeader> {
  const macro = (tag: string): DataSet | undefined => firstItem(shared, tag) ?? firstItem(first, tag);
  const xray = macro(CT_XRAY_DETAILS);
  const acquisition = macro(CT_ACQUISITION_DETAILS);
  // Enhanced Contrast/Bolus (PS3.3 C.7.6.4b) codes the agent: its Code Meaning names it.
  const agent = firstItem(ds, CONTRAST_AGENT_SEQUENCE);
  return {
    kvp: base.kvp ?? (xray && num(xray, 'x00180060')),
    gantryTiltDeg: base.gantryTiltDeg ?? (acquisition && num(acquisition, 'x00181120')),
    contrastAgent: base.contrastAgent ?? (agent && str(agent, 'x00080104')),
  };
}
