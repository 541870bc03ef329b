import type { LevelResult, VbmdReport } from '../bmd/report.js';
import {
  BASIS_CODES,
  CALIBRATION_CODES,
  CATEGORY_CODES,
  DCM,
  LANGUAGE_EN_US,
  SCT,
  SOP_CLASS,
  UCUM,
  VBMD,
  vertebraCode,
  type Code,
} from './codes.js';
import { commonModules, dicomDateTimeUtc, writePart10, MANUFACTURER, type Dataset, type DicomObject } from './part10.js';
import type { SegmentInfo } from './seg.js';
import { codeContent, containerItem, evidence, imageContent, numContent, textContent, uidContent } from './sr-items.js';
import type { SourceInstance, SourceSeries } from './source-series.js';
import { uidFromName, type OutputUids } from './uids.js';

/**
 * DICOM Comprehensive SR holding a TID 1500 Imaging Measurement Report (PS3.16) of one analysis:
 * - observer context: the algorithm as a device (TID 1004);
 * - Image Library: the source CT instances the ROIs lie on;
 * - Imaging Measurements: per ROI a TID 1411 volumetric ROI group (tracking id and UID, finding site = the
 *   vertebra (CID 7603), the referenced SEG segment and its source series, vBMD in mg/cm3, ROI HU median and
 *   mean, ROI volume, each value with its derivation and TID 4019 algorithm identification; the level's
 *   inclusion and exclusion reason), a TID 1501 group for a level without ROI, and a TID 1501 group for the
 *   summary (value, levels used, basis, ACR category, calibration method and parameters, QC remarks).
 */
export interface SrInput {
  report: VbmdReport;
  source: SourceSeries;
  uids: OutputUids;
  segments: readonly SegmentInfo[];
  /** Source instances the SEG frames derive from (the Image Library). */
  referenced: readonly SourceInstance[];
  keyImage: { sopClassUid: string; sopInstanceUid: string; seriesInstanceUid: string };
  createdAt: Date;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

/** TID 4019 Algorithm Identification, as HAS CONCEPT MOD children of a measurement. */
export function algorithmItems(report: VbmdReport, roiKind: 'model' | 'geometric' | 'summary'): Dataset[] {
  const c = report.calibration;
  const params = [
    `calibration ${c.method}: HU = ${round1(c.intercept)} + ${Math.round(c.slope * 1000) / 1000} x vBMD${c.uncalibrated ? ' (uncalibrated)' : ''}`,
    roiKind === 'model' ? 'ROI: network-predicted trabecular region, mean calibrated density' : roiKind === 'geometric' ? 'ROI: elliptic mid-body trabecular cylinder, median' : 'summary: mean of the levels used (ACR)',
  ];
  const useModel = report.model && roiKind !== 'geometric';
  const name = useModel ? report.model!.name : report.software?.name ?? 'vbmd';
  const version = useModel ? `${report.model!.version} (sha256 ${report.model!.sha256.slice(0, 16)}; engine ${report.software?.version ?? 'unknown'})` : report.software?.version ?? 'unknown';
  return [
    textContent('HAS CONCEPT MOD', DCM.algorithmName, name),
    textContent('HAS CONCEPT MOD', DCM.algorithmVersion, version),
    ...params.map((p) => textContent('HAS CONCEPT MOD', DCM.algorithmParameters, p)),
  ];
}

function derivation(d: Code): Dataset {
  return codeContent('HAS CONCEPT MOD', DCM.derivation, d);
}

function levelStatusItems(l: LevelResult): Dataset[] {
  const out = [codeContent('CONTAINS', VBMD.levelIncluded, l.included ? SCT.yes : SCT.no)];
  if (!l.included) {
    const reason = l.exclusionReason ?? (l.vbmd === null ? 'not measurable' : 'not used');
    out.push(textContent('CONTAINS', VBMD.exclusionReason, l.exclusionDetail ? `${reason}: ${l.exclusionDetail}` : reason));
  }
  return out;
}

function findingSite(l: LevelResult): Dataset[] {
  const code = vertebraCode(l.level);
  return code ? [codeContent('HAS CONCEPT MOD', SCT.findingSite, code)] : [];
}

function roiGroup(input: SrInput, seg: SegmentInfo, segRef: { sopClassUid: string; sopInstanceUid: string }): Dataset {
  const { report } = input;
  const l = report.levels.find((x) => x.level === seg.roi.level)!;
  const reported = (l.roiSource ?? 'geometric') === seg.roi.kind;
  const items: Dataset[] = [
    textContent('HAS OBS CONTEXT', DCM.trackingIdentifier, seg.label),
    uidContent('HAS OBS CONTEXT', DCM.trackingUid, uidFromName('tracking', input.uids.analysis, seg.label)),
    ...findingSite(l),
    codeContent('HAS CONCEPT MOD', SCT.measurementMethod, seg.roi.kind === 'model' ? VBMD.roiKindModel : VBMD.roiKindGeometric),
    imageContent('CONTAINS', { ...segRef, segmentNumber: seg.number }, DCM.referencedSegment),
    uidContent('CONTAINS', DCM.sourceSeriesForSegmentation, input.source.seriesInstanceUid),
  ];
  const algo = algorithmItems(report, seg.roi.kind);
  if (seg.roi.kind === 'model') {
    if (reported && l.vbmd !== null) items.push(numContent('CONTAINS', VBMD.vbmd, l.vbmd, UCUM.mgPerCm3, [derivation(SCT.mean), ...algo]));
    if (l.modelRoiVoxels !== undefined && l.modelRoiMask) {
      items.push(numContent('CONTAINS', SCT.volume, round1(l.modelRoiVoxels * l.modelRoiMask.spacingMm ** 3), UCUM.mm3));
    }
  } else {
    const v = reported ? l.vbmd : l.geometricVbmd ?? null;
    if (v !== null) items.push(numContent('CONTAINS', VBMD.vbmd, v, UCUM.mgPerCm3, [derivation(SCT.median), ...algo]));
    if (l.roiHuMedian !== null) items.push(numContent('CONTAINS', DCM.attenuationCoefficient, l.roiHuMedian, UCUM.hounsfield, [derivation(SCT.median)]));
    if (l.roiHuMean !== null) items.push(numContent('CONTAINS', DCM.attenuationCoefficient, l.roiHuMean, UCUM.hounsfield, [derivation(SCT.mean)]));
    const [sx, sy, sz] = report.input.spacingMm;
    items.push(numContent('CONTAINS', SCT.volume, round1(l.roiVoxels * sx * sy * sz), UCUM.mm3));
  }
  if (reported) items.push(...levelStatusItems(l));
  return containerItem('CONTAINS', DCM.measurementGroup, items, '1411');
}

/** A level that has no ROI in the SEG (nothing measurable): its status only (TID 1501). */
function levelWithoutRoiGroup(input: SrInput, l: LevelResult): Dataset {
  const label = `${l.level} (no ROI)`;
  return containerItem(
    'CONTAINS',
    DCM.measurementGroup,
    [
      textContent('HAS OBS CONTEXT', DCM.trackingIdentifier, label),
      uidContent('HAS OBS CONTEXT', DCM.trackingUid, uidFromName('tracking', input.uids.analysis, label)),
      ...findingSite(l),
      ...levelStatusItems(l),
    ],
    '1501',
  );
}

function summaryGroup(input: SrInput): Dataset {
  const { report } = input;
  const s = report.summary;
  const lumbar = s.levels.every((x) => x.startsWith('L'));
  const items: Dataset[] = [
    textContent('HAS OBS CONTEXT', DCM.trackingIdentifier, 'vBMD summary'),
    uidContent('HAS OBS CONTEXT', DCM.trackingUid, uidFromName('tracking', input.uids.analysis, 'summary')),
    ...(s.levels.length > 0 ? [codeContent('HAS CONCEPT MOD', SCT.findingSite, lumbar ? SCT.lumbarSpine : SCT.thoracicSpine)] : []),
  ];
  if (s.vbmd !== null) items.push(numContent('CONTAINS', VBMD.vbmd, s.vbmd, UCUM.mgPerCm3, [derivation(SCT.mean), ...algorithmItems(report, 'summary')]));
  items.push(
    textContent('CONTAINS', VBMD.levelsUsed, s.levels.length > 0 ? s.levels.join(', ') : 'none'),
    codeContent('CONTAINS', VBMD.summaryBasis, BASIS_CODES[s.basis]),
    codeContent('CONTAINS', VBMD.acrCategory, CATEGORY_CODES[s.category]),
    codeContent('CONTAINS', VBMD.calibrationMethod, CALIBRATION_CODES[report.calibration.method]),
    numContent('CONTAINS', VBMD.calibrationSlope, report.calibration.slope, UCUM.hounsfieldPerMgCm3),
    numContent('CONTAINS', VBMD.calibrationIntercept, report.calibration.intercept, UCUM.hounsfield),
    ...report.qc.warnings.map((w) => textContent('CONTAINS', VBMD.qcRemark, w)),
  );
  return containerItem('CONTAINS', DCM.measurementGroup, items, '1501');
}

function contentTree(input: SrInput): Dataset[] {
  const { report, segments } = input;
  const segRef = { sopClassUid: SOP_CLASS.segmentation, sopInstanceUid: input.uids.seg };
  const withRoi = new Set(segments.map((s) => s.roi.level));
  const groups = [
    ...segments.map((s) => roiGroup(input, s, segRef)),
    ...report.levels.filter((l) => !withRoi.has(l.level)).map((l) => levelWithoutRoiGroup(input, l)),
    summaryGroup(input),
  ];
  return [
    codeContent('HAS CONCEPT MOD', DCM.language, LANGUAGE_EN_US),
    codeContent('HAS OBS CONTEXT', DCM.observerType, DCM.device),
    uidContent('HAS OBS CONTEXT', DCM.deviceObserverUid, uidFromName('device', report.software?.name ?? 'vbmd', report.software?.version ?? '', report.model?.sha256 ?? '')),
    textContent('HAS OBS CONTEXT', DCM.deviceObserverName, report.software?.name ?? 'vbmd'),
    textContent('HAS OBS CONTEXT', DCM.deviceObserverManufacturer, MANUFACTURER),
    textContent('HAS OBS CONTEXT', DCM.deviceObserverModelName, report.model ? `${report.model.name} ${report.model.version}` : `${report.software?.name ?? 'vbmd'} (no model)`),
    codeContent('HAS CONCEPT MOD', DCM.procedureReported, SCT.ct),
    containerItem('CONTAINS', DCM.imageLibrary, [
      containerItem('CONTAINS', DCM.imageLibraryGroup, input.referenced.map((i) => imageContent('CONTAINS', i))),
    ]),
    containerItem('CONTAINS', DCM.imagingMeasurements, groups),
  ];
}

export function buildSr(input: SrInput): DicomObject {
  const { report, source, uids } = input;
  const { date, time } = dicomDateTimeUtc(input.createdAt);
  const bySeries = new Map<string, { sopClassUid: string; sopInstanceUid: string }[]>();
  if (input.referenced.length > 0) bySeries.set(source.seriesInstanceUid, [...input.referenced]);
  bySeries.set(uids.segSeries, [{ sopClassUid: SOP_CLASS.segmentation, sopInstanceUid: uids.seg }]);
  const dataset: Dataset = {
    ...commonModules(source, report, {
      sopClassUid: SOP_CLASS.comprehensiveSr,
      sopInstanceUid: uids.sr,
      seriesInstanceUid: uids.srSeries,
      modality: 'SR',
      seriesNumber: 9800,
      seriesDescription: 'vBMD measurement report (AI)',
      createdAt: input.createdAt,
    }),
    ReferencedPerformedProcedureStepSequence: [],
    InstanceNumber: '1',
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PreliminaryFlag: 'FINAL',
    ContentDate: date,
    ContentTime: time,
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: evidence(source.patientStudy.StudyInstanceUID, bySeries),
    // The key image is not referenced in the content tree; it is listed here so the whole result set can be
    // found (and replaced) from the SR.
    PertinentOtherEvidenceSequence: evidence(source.patientStudy.StudyInstanceUID, new Map([[input.keyImage.seriesInstanceUid, [input.keyImage]]])),
    ...containerItem(null, DCM.imagingMeasurementReport, contentTree(input), '1500'),
  };
  return { kind: 'sr', sopClassUid: SOP_CLASS.comprehensiveSr, sopInstanceUid: uids.sr, seriesInstanceUid: uids.srSeries, bytes: writePart10(dataset) };
}
