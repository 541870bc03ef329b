import type { VbmdReport } from '../bmd/report.js';
import { vbmdReport } from '../bmd/report.js';
import type { Volume } from '../imaging/volume.js';
import { VbmdError } from '../util/errors.js';
import { SOP_CLASS } from './codes.js';
import { buildKeyImage } from './key-image.js';
import type { DicomObject } from './part10.js';
import { reportRois, type LevelRoi } from './roi-masks.js';
import { buildSeg } from './seg.js';
import { instancesBySlice, type SourceSeries } from './source-series.js';
import { buildSr } from './sr.js';
import { outputUids, type OutputUids } from './uids.js';

export interface DicomOutputInput {
  report: VbmdReport;
  /** The analysed volume (same grid as the report's coordinates). */
  volume: Volume;
  source: SourceSeries;
  /** Content/creation date-time written into the objects. */
  createdAt: Date;
}

export interface DicomOutputs {
  uids: OutputUids;
  sr: DicomObject;
  seg: DicomObject;
  keyImage: DicomObject;
  rois: LevelRoi[];
  /** Remarks about what the objects could not show (e.g. ROI voxels on an interpolated slice). */
  notes: string[];
}

/**
 * The three result objects of one analysis (IHE AI Results content): SR TID 1500, SEG of the ROIs and the key
 * image, with deterministic UIDs (src/dicom-output/uids.ts). Pure apart from CPU: nothing is sent or written.
 */
export function buildDicomOutputs(input: DicomOutputInput): DicomOutputs {
  const { volume, source } = input;
  const report = checkedReport(input.report);
  if (report.input.studyInstanceUid && report.input.studyInstanceUid !== source.patientStudy.StudyInstanceUID) {
    throw new VbmdError('bad-input', `The report is of study ${report.input.studyInstanceUid} but the source series belongs to study ${source.patientStudy.StudyInstanceUID}.`);
  }
  if (report.input.seriesInstanceUid && report.input.seriesInstanceUid !== source.seriesInstanceUid) {
    throw new VbmdError('bad-input', `The report is of series ${report.input.seriesInstanceUid} but the source series is ${source.seriesInstanceUid}.`);
  }
  if (report.input.dims.some((d, i) => d !== volume.dims[i])) {
    throw new VbmdError('bad-input', `The volume (${volume.dims.join('x')}) is not the one the report was measured on (${report.input.dims.join('x')}).`);
  }
  const uids = outputUids(report, source.seriesInstanceUid);
  const bySlice = instancesBySlice(volume, source);
  const rois = reportRois(report, volume);
  if (rois.length === 0) {
    // A SEG needs at least one frame (PS3.3 C.7.6.6): with no ROI there is no measurement to show on the PACS.
    throw new VbmdError('no-spine', `The analysis of series ${source.seriesInstanceUid} has no ROI (no measurable vertebra), so no DICOM results are made.`);
  }
  const notes: string[] = [];
  const missing = report.levels.filter((l) => l.roiVoxels > 0 && !l.geometricRoi && !(l.roiSource === 'model' && l.modelRoiMask));
  if (missing.length > 0) notes.push(`The report carries no ROI voxels for ${missing.map((l) => l.level).join(', ')} (a report from an older engine): those levels have no SEG segment.`);
  const seg = buildSeg(report, volume, source, bySlice, rois, uids, input.createdAt);
  if (seg.voxelsWithoutSource > 0) notes.push(`${seg.voxelsWithoutSource} ROI voxel(s) lie on slices the series lacks (interpolated gaps) and are not in the SEG.`);
  const keyImage = buildKeyImage(report, volume, source, seg.referenced, rois, uids, input.createdAt);
  const sr = buildSr({
    report,
    source,
    uids,
    segments: seg.segments,
    referenced: seg.referenced,
    keyImage: { sopClassUid: SOP_CLASS.secondaryCapture, sopInstanceUid: uids.keyImage, seriesInstanceUid: uids.keyImageSeries },
    createdAt: input.createdAt,
  });
  return { uids, sr, seg: seg.object, keyImage, rois, notes };
}

/**
 * The report as the schema allows it: the engine's report reaches here without a parse (`vbmd analyze
 * --dicom-out`), and a NaN or Infinity must not be burnt into the key image or fail deep in the SR writer.
 */
function checkedReport(r: VbmdReport): VbmdReport {
  const parsed = vbmdReport.safeParse(r);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new VbmdError('bad-input', `The report is not a valid vbmd.report/1 (${first.join('; ')}); no DICOM results were made.`);
}
