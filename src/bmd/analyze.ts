import type { LoadedVolume, Vec3 } from '../imaging/volume.js';
import type { Calibrate, SiteCalibrationFile } from './calibration/types.js';
import { hounsfieldToVbmd } from './calibration/types.js';
import { calibrateWithFallback } from './calibration-adapter.js';
import type { CalibrationResult, LevelResult, ReportSummary, VbmdReport } from './report.js';
import { REPORT_SCHEMA } from './report.js';
import { locateVertebrae, type LocatedVertebra } from './spine/locate.js';
import { measureRoi, roiGeometry, type RoiGeometry, type RoiStats } from './roi/trabecular-roi.js';
import { lesionFlags, levelExclusion, MAX_FRACTURE_SLICE_MM } from './qc/level-qc.js';
import { ENHANCED_BLOOD_HU, prevertebralVesselHu } from './qc/contrast.js';
import { summarize } from './summary.js';
import { median } from './median.js';
import type { ChunkRunner } from './parallel/chunk-runner.js';

export interface AnalyzeOptions {
  /** Parsed site calibration file (`--calibration FILE`). */
  site?: SiteCalibrationFile;
  /** Calibration implementation (default: src/bmd/calibration's calibrate, nominal if it fails). */
  calibrate?: Calibrate;
  /** Stage timings are added here (ms). */
  timingsMs?: Record<string, number>;
  software?: { name: string; version: string };
  /** Where the whole-volume loops run (default: this thread; src/bmd/parallel/helper-thread.ts adds a second). */
  runner?: ChunkRunner;
}

export { locateVertebrae, type LocatedVertebra, type SpineLocation } from './spine/locate.js';

const now = (): number => performance.now();

/** Full measurement of one loaded volume into a `vbmd.report/1`. Pure apart from timing. */
export function analyzeVolume(loaded: LoadedVolume, options: AnalyzeOptions = {}): VbmdReport {
  const timingsMs = options.timingsMs ?? {};
  const { volume, meta } = loaded;
  const loc = locateVertebrae(loaded, timingsMs, options.runner);
  const warnings = [...(meta.warnings ?? []), ...loc.warnings];

  let t0 = now();
  const rois: { geom: RoiGeometry; stats: RoiStats }[] = loc.vertebrae.map((v) => {
    const geom = roiGeometry(v.centerMm, v.widthMm, v.depthMm, v.heightMm);
    return { geom, stats: measureRoi(volume, geom) };
  });
  timingsMs.roi = now() - t0;

  t0 = now();
  const calibration: CalibrationResult = calibrateWithFallback(
    { loaded, vertebralBodyCentersMm: loc.vertebrae.map((v) => v.centerMm), site: options.site },
    options.calibrate,
    warnings,
  );
  timingsMs.calibration = now() - t0;

  t0 = now();
  const levels = levelResults(loaded, loc.vertebrae, rois, calibration);
  for (const l of levels) if (l.exclusionReason && l.exclusionDetail) warnings.push(`Excluded ${l.exclusionDetail}`);
  const sliceMm = sliceSpacingMm(loaded);
  if (levels.length > 0 && sliceMm > MAX_FRACTURE_SLICE_MM) {
    warnings.push(`Slices ${round1(sliceMm)} mm apart: too coarse to grade vertebral height loss, so no fracture screen was done (needs <= ${MAX_FRACTURE_SLICE_MM} mm).`);
  }
  const vesselHu = prevertebralVesselHu(loc.grid, loc.track);
  const contrastTag = contrastTagged(loaded);
  const contrastSeen = vesselHu !== null && vesselHu > ENHANCED_BLOOD_HU;
  if (contrastTag || contrastSeen) {
    warnings.push(
      `Contrast-enhanced scan (${contrastTag ? `DICOM contrast agent "${meta.contrastAgent}"` : ''}${contrastTag && contrastSeen ? ', ' : ''}${contrastSeen ? `aorta ~${Math.round(vesselHu as number)} HU` : ''}): iodine raises trabecular HU, so vBMD reads high.`,
    );
  }
  const summary = summarize(levels);
  warnings.push(...summaryWarnings(summary, levels, calibration));
  timingsMs.qc = now() - t0;

  return {
    schema: REPORT_SCHEMA,
    input: {
      kind: meta.kind,
      studyInstanceUid: meta.studyInstanceUid,
      seriesInstanceUid: meta.seriesInstanceUid,
      patientId: meta.patientId,
      accessionNumber: meta.accessionNumber,
      acquisitionDateTime: meta.acquisitionDateTime,
      dims: [...volume.dims] as Vec3,
      spacingMm: volume.spacingMm.map((s) => Math.round(s * 1000) / 1000) as Vec3,
      kvp: meta.kvp,
      manufacturer: meta.manufacturer,
      manufacturerModelName: meta.manufacturerModelName,
      contrast: contrastTag || contrastSeen,
    },
    levels,
    summary,
    calibration,
    qc: { warnings },
    model: null,
    software: options.software,
    timingsMs: Object.fromEntries(Object.entries(timingsMs).map(([k, v]) => [k, Math.round(v * 10) / 10])),
  };
}

/** Spacing of the slices along the patient's long axis, mm (the in-plane spacing for a sagittal stack). */
function sliceSpacingMm(loaded: LoadedVolume): number {
  const { volume } = loaded;
  return Math.min(...volume.spacingMm.filter((_, i) => Math.abs(volume.direction[i][2]) > 0.5));
}

/** Median posterior body height of the measured levels within two of level k, mm; null when none. */
function neighbourPosteriorMm(vertebrae: LocatedVertebra[], k: number): number | null {
  const h: number[] = [];
  for (let d = -2; d <= 2; d++) {
    const p = d !== 0 ? vertebrae[k + d]?.heightsMm?.posterior : undefined;
    if (p !== undefined) h.push(p);
  }
  return h.length ? median(h) : null;
}

/**
 * Per level: exclusions (coverage, label, ROI size, fracture: first rule that fires), then the lesion screen
 * across levels, and the calibrated value.
 */
function levelResults(loaded: LoadedVolume, vertebrae: LocatedVertebra[], rois: { geom: RoiGeometry; stats: RoiStats }[], calibration: CalibrationResult): LevelResult[] {
  const { volume } = loaded;
  const voxelMm3 = volume.spacingMm[0] * volume.spacingMm[1] * volume.spacingMm[2];
  // Endplates are found on the 1 mm straightened spine, but not finer than the source slices.
  const heightResolutionMm = Math.max(1, sliceSpacingMm(loaded));
  const firstPass = vertebrae.map((v, k) =>
    levelExclusion({
      level: v.level,
      labelConfidence: v.labelConfidence,
      partialCoverage: v.partialCoverage,
      roiVoxels: rois[k].stats.voxels,
      roiVolumeMm3: rois[k].stats.voxels * voxelMm3,
      roiMedianHu: rois[k].stats.medianHu,
      roiSdHu: rois[k].stats.sdHu,
      heightsMm: v.heightsMm,
      heightResolutionMm,
      neighbourPosteriorMm: neighbourPosteriorMm(vertebrae, k),
    }),
  );
  const lesions = lesionFlags(
    vertebrae.map((v, k) => ({
      level: v.level,
      medianHu: rois[k].stats.medianHu,
      sdHu: rois[k].stats.robustSdHu,
      rawSdHu: rois[k].stats.sdHu,
      eligible: firstPass[k].reason === null || firstPass[k].reason === 'label-uncertain',
    })),
  );
  return vertebrae.map((v, k) => {
    const s = rois[k].stats;
    const lesion = firstPass[k].reason === null && lesions[k];
    const reason = lesion ? 'lesion' : firstPass[k].reason;
    const detail = lesion ? lesions[k] : firstPass[k].detail;
    const vbmd = s.medianHu === null ? null : round1(hounsfieldToVbmd(s.medianHu, calibration));
    return {
      level: v.level,
      labelConfidence: v.labelConfidence,
      centerMm: v.centerMm.map(round1) as Vec3,
      roiHuMedian: s.medianHu,
      roiHuMean: s.meanHu,
      roiHuSd: s.sdHu,
      roiVoxels: s.voxels,
      vbmd,
      included: reason === null && vbmd !== null,
      exclusionReason: reason,
      exclusionDetail: detail,
      heightsMm: v.heightsMm,
      roiSource: 'geometric',
      geometricRoi: rois[k].geom,
    };
  });
}

/** What the summary's basis, its levels' names and the calibration mean for a reader. */
function summaryWarnings(summary: ReportSummary, levels: LevelResult[], calibration: CalibrationResult): string[] {
  const out: string[] = [];
  const levelsFound = levels.length;
  const unsure = levels.filter((l) => summary.levels.includes(l.level) && l.labelConfidence < 0.8);
  if (unsure.length > 0) {
    out.push(
      `The summary's level names are not certain (${unsure.map((l) => `${l.level} ${l.labelConfidence.toFixed(2)}`).join(', ')}): the value may come from the neighbouring vertebrae; check the labels on the images.`,
    );
  }
  if (summary.basis === 'thoracic-extrapolated') {
    out.push(`No two lumbar levels are measurable: the summary uses ${summary.levels.join(' and ')} (thoracic extrapolation; ACR thresholds are defined for lumbar vBMD).`);
  } else if (summary.basis === 'single-level') {
    out.push(`Only ${summary.levels[0]} is measurable: the summary rests on a single level.`);
  } else if (summary.basis === 'none' && levelsFound > 0) {
    out.push('No level is measurable: the result is indeterminate.');
  }
  if (calibration.uncalibrated) out.push('Calibration is a nominal default (uncalibrated): vBMD values are approximate.');
  return out;
}

function contrastTagged(loaded: LoadedVolume): boolean {
  const a = loaded.meta.contrastAgent?.trim();
  return a !== undefined && a !== '' && !/^(none|no)$/i.test(a);
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
