import type { LoadedVolume, Vec3 } from '../imaging/volume.js';
import type { Calibrate, SiteCalibrationFile } from './calibration/types.js';
import { hounsfieldToVbmd } from './calibration/types.js';
import { calibrateWithFallback } from './calibration-adapter.js';
import type { CalibrationResult, LevelResult, VbmdReport } from './report.js';
import { REPORT_SCHEMA } from './report.js';
import { buildWorkingGrid, workingToPatientMm, type WorkingGrid } from './spine/working-grid.js';
import { findSpineTrack, type SpineTrack } from './spine/find-spine.js';
import { type LevelSegment, findDiscs, ownBodySlices, segmentsFromDiscs } from './spine/levels.js';
import { labelSegments, type LabelledSegment } from './spine/labels.js';
import { measureHeightsMm, type BodyHeightsMm } from './spine/heights.js';
import { measureRoi, roiGeometry, type RoiGeometry, type RoiStats } from './roi/trabecular-roi.js';
import { lesionFlags, levelExclusion } from './qc/level-qc.js';
import { ENHANCED_BLOOD_HU, prevertebralVesselHu } from './qc/contrast.js';
import { summarize } from './summary.js';

export interface AnalyzeOptions {
  /** Parsed site calibration file (`--calibration FILE`). */
  site?: SiteCalibrationFile;
  /** Calibration implementation (default: src/bmd/calibration's calibrate, nominal if it fails). */
  calibrate?: Calibrate;
  /** Stage timings are added here (ms). */
  timingsMs?: Record<string, number>;
  software?: { name: string; version: string };
}

/** One found vertebral body with its geometry: what the model (issue 7) and the report need. */
export interface LocatedVertebra extends LabelledSegment {
  centerMm: Vec3;
  widthMm: number;
  depthMm: number;
  heightMm: number;
  heightsMm: BodyHeightsMm | null;
  partialCoverage: boolean;
}

export interface SpineLocation {
  grid: WorkingGrid;
  track: SpineTrack;
  vertebrae: LocatedVertebra[];
  warnings: string[];
}

const now = (): number => performance.now();

/**
 * Neighbouring vertebral bodies sit within ~10 mm of each other in-plane (even in scoliosis, level to level);
 * a body 20 mm off the median of its neighbours is not on the column.
 */
const MAX_OFF_COLUMN_MM = 20;

/** Segments off the column, removed worst first until every remaining one is within MAX_OFF_COLUMN_MM. */
function offColumnSegments(grid: WorkingGrid, track: SpineTrack, segments: LevelSegment[]): Set<LevelSegment> {
  const sorted = [...segments].sort((a, b) => a.zFrom - b.zFrom);
  const centre = sorted.map((sg) => {
    const z = Math.round((sg.zFrom + sg.zTo) / 2);
    return workingToPatientMm(grid, [track.bodyX[z], track.bodyY[z], z]);
  });
  const out = new Set<LevelSegment>();
  for (;;) {
    const alive = sorted.map((_, i) => i).filter((i) => !out.has(sorted[i]));
    if (alive.length < 4) return out;
    let worst = -1;
    let worstD = MAX_OFF_COLUMN_MM;
    alive.forEach((i, k) => {
      // Interior: midway between the two neighbours (follows kyphosis/lordosis); ends: the one neighbour,
      // with more slack since the curve cannot be interpolated there.
      const prev = k > 0 ? centre[alive[k - 1]] : null;
      const next = k + 1 < alive.length ? centre[alive[k + 1]] : null;
      const px = prev && next ? (prev[0] + next[0]) / 2 : (prev ?? next)![0];
      const py = prev && next ? (prev[1] + next[1]) / 2 : (prev ?? next)![1];
      const limit = prev && next ? MAX_OFF_COLUMN_MM : 1.5 * MAX_OFF_COLUMN_MM;
      const d = Math.hypot(centre[i][0] - px, centre[i][1] - py) - limit + MAX_OFF_COLUMN_MM;
      if (d > worstD) {
        worstD = d;
        worst = i;
      }
    });
    if (worst < 0) return out;
    out.add(sorted[worst]);
  }
}

function medianFinite(a: Float32Array, from: number, to: number): number {
  const v: number[] = [];
  for (let z = from; z <= to; z++) if (Number.isFinite(a[z])) v.push(a[z]);
  v.sort((x, y) => x - y);
  return v.length ? v[v.length >> 1] : NaN;
}

/** Spine finding, level separation and labelling, cranial level first. Pure; no levels when no spine. */
export function locateVertebrae(loaded: LoadedVolume, timingsMs: Record<string, number> = {}): SpineLocation {
  let t0 = now();
  const grid = buildWorkingGrid(loaded.volume);
  const track = findSpineTrack(grid);
  const warnings: string[] = [];
  if (track.zFirst < 0) {
    timingsMs.spine = now() - t0;
    warnings.push('No spine was found in the field of view (no vertebral column with a spinal canal); no levels are reported.');
    return { grid, track, vertebrae: [], warnings };
  }
  const discs = findDiscs(grid, track);
  const segments = segmentsFromDiscs(discs, track.zFirst, track.zLast, grid.spacingMm[2]);
  timingsMs.spine = now() - t0;
  t0 = now();
  if (segments.length === 0) {
    warnings.push('A spinal column was found but no intervertebral discs could be separated; no levels are reported.');
    timingsMs.labels = now() - t0;
    return { grid, track, vertebrae: [], warnings };
  }
  const outliers = offColumnSegments(grid, track, segments);
  let interiorOutlier = false;
  if (outliers.size > 0) {
    const sorted = [...segments].sort((a, b) => a.zFrom - b.zFrom);
    sorted.forEach((sg, i) => {
      if (!outliers.has(sg)) return;
      const below = sorted.slice(0, i).some((o) => !outliers.has(o));
      const above = sorted.slice(i + 1).some((o) => !outliers.has(o));
      if (below && above) interiorOutlier = true;
    });
    warnings.push(
      `${outliers.size} segment(s) lay more than ${MAX_OFF_COLUMN_MM} mm off the line of the other vertebral bodies and were discarded (a contrast-filled vessel or an implant can mimic a body).`,
    );
    for (let i = segments.length - 1; i >= 0; i--) if (outliers.has(segments[i])) segments.splice(i, 1);
  }
  const nz = grid.dims[2];
  const trackEndsAboveFovMm = track.zFirst * grid.spacingMm[2];
  const vesselHu = prevertebralVesselHu(grid, track);
  const labels = labelSegments(grid, track, segments, trackEndsAboveFovMm, contrastTagged(loaded) || (vesselHu !== null && vesselHu > ENHANCED_BLOOD_HU));
  warnings.push(...labels.warnings);
  if (interiorOutlier) {
    // A discarded segment inside the column may have been a real level: counting across it is unsafe.
    for (const l of labels.levels) l.labelConfidence = Math.min(l.labelConfidence, 0.45);
    warnings.push('A segment inside the column was discarded, so counting from the anchors is unreliable: labels are uncertain.');
  }
  const complete = labels.levels.filter((s) => s.cranialDisc && s.caudalDisc).map((s) => s.zTo - s.zFrom + 1);
  complete.sort((a, b) => a - b);
  const typicalLen = complete.length ? complete[complete.length >> 1] : NaN;
  const vertebrae: LocatedVertebra[] = labels.levels.map((s) => {
    const h = measureHeightsMm(grid, track, s);
    // Centre and size from the slices that hold this body (a tilted disc puts the neighbour's body in the end slices).
    const own = ownBodySlices(track, s, grid.spacingMm[1]);
    const zc = (own.zFrom + own.zTo) / 2;
    const zr = Math.round(zc);
    const centerMm = workingToPatientMm(grid, [track.bodyX[zr], track.bodyY[zr], zc]);
    const widthMm = medianFinite(track.bodyWidthMm, own.zFrom, own.zTo);
    const depthMm = medianFinite(track.bodyDepthMm, own.zFrom, own.zTo);
    const len = s.zTo - s.zFrom + 1;
    const heightMm = (own.zTo - own.zFrom + 1) * grid.spacingMm[2];
    let edge = false;
    for (let z = s.zFrom; z <= s.zTo; z++) if (track.touchesEdge[z]) edge = true;
    // An end without a disc is cut when the level is short, or when it reaches the scan edge and is shorter
    // than 90% of its whole neighbour (adjacent bodies differ by a few % in height; a body fully in the scan
    // plus part of its disc is at least as long as its neighbour, whose disc slices are not counted).
    const whole = labels.levels.filter((o) => o.cranialDisc && o.caudalDisc);
    const below = whole.filter((o) => o.zTo < s.zFrom).sort((a, b) => b.zTo - a.zTo)[0];
    const above = whole.filter((o) => o.zFrom > s.zTo).sort((a, b) => a.zFrom - b.zFrom)[0];
    const lenOf = (o: LevelSegment | undefined): number => (o ? o.zTo - o.zFrom + 1 : typicalLen);
    const openCaudal = !s.caudalDisc && (len < 0.75 * typicalLen || (s.zFrom <= 1 && !(len >= 0.9 * lenOf(above))));
    const openCranial = !s.cranialDisc && (len < 0.75 * typicalLen || (s.zTo >= nz - 2 && !(len >= 0.9 * lenOf(below))));
    return {
      ...s,
      centerMm,
      widthMm,
      depthMm,
      heightMm,
      heightsMm: h ? h.heightsMm : null,
      partialCoverage: edge || openCaudal || openCranial,
    };
  });
  timingsMs.labels = now() - t0;
  return { grid, track, vertebrae, warnings };
}

/** Full measurement of one loaded volume into a `vbmd.report/1`. Pure apart from timing. */
export function analyzeVolume(loaded: LoadedVolume, options: AnalyzeOptions = {}): VbmdReport {
  const timingsMs = options.timingsMs ?? {};
  const { volume, meta } = loaded;
  const loc = locateVertebrae(loaded, timingsMs);
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
  const voxelMm3 = volume.spacingMm[0] * volume.spacingMm[1] * volume.spacingMm[2];
  const firstPass = loc.vertebrae.map((v, k) =>
    levelExclusion({
      level: v.level,
      labelConfidence: v.labelConfidence,
      partialCoverage: v.partialCoverage,
      roiVoxels: rois[k].stats.voxels,
      roiVolumeMm3: rois[k].stats.voxels * voxelMm3,
      roiMedianHu: rois[k].stats.medianHu,
      roiSdHu: rois[k].stats.sdHu,
      heightsMm: v.heightsMm,
      heightResolutionMm: loc.grid.spacingMm[2],
    }),
  );
  const lesions = lesionFlags(
    loc.vertebrae.map((v, k) => ({
      level: v.level,
      medianHu: rois[k].stats.medianHu,
      sdHu: rois[k].stats.robustSdHu,
      rawSdHu: rois[k].stats.sdHu,
      eligible: firstPass[k].reason === null || firstPass[k].reason === 'label-uncertain',
    })),
  );
  const levels: LevelResult[] = loc.vertebrae.map((v, k) => {
    const s = rois[k].stats;
    let reason = firstPass[k].reason;
    let detail = firstPass[k].detail;
    if (reason === null && lesions[k]) {
      reason = 'lesion';
      detail = lesions[k];
    }
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
  for (const l of levels) if (l.exclusionReason && l.exclusionDetail) warnings.push(`Excluded ${l.exclusionDetail}`);
  const vesselHu = prevertebralVesselHu(loc.grid, loc.track);
  const contrastTag = contrastTagged(loaded);
  const contrastSeen = vesselHu !== null && vesselHu > ENHANCED_BLOOD_HU;
  if (contrastTag || contrastSeen) {
    warnings.push(
      `Contrast-enhanced scan (${contrastTag ? `DICOM contrast agent "${meta.contrastAgent}"` : ''}${contrastTag && contrastSeen ? ', ' : ''}${contrastSeen ? `aorta ~${Math.round(vesselHu as number)} HU` : ''}): iodine raises trabecular HU, so vBMD reads high.`,
    );
  }
  const summary = summarize(levels);
  if (summary.basis === 'thoracic-extrapolated') {
    warnings.push(`No two lumbar levels are measurable: the summary uses ${summary.levels.join(' and ')} (thoracic extrapolation; ACR thresholds are defined for lumbar vBMD).`);
  } else if (summary.basis === 'single-level') {
    warnings.push(`Only ${summary.levels[0]} is measurable: the summary rests on a single level.`);
  } else if (summary.basis === 'none' && loc.vertebrae.length > 0) {
    warnings.push('No level is measurable: the result is indeterminate.');
  }
  if (calibration.uncalibrated) warnings.push('Calibration is a nominal default (uncalibrated): vBMD values are approximate.');
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

function contrastTagged(loaded: LoadedVolume): boolean {
  const a = loaded.meta.contrastAgent?.trim();
  return a !== undefined && a !== '' && !/^(none|no)$/i.test(a);
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
