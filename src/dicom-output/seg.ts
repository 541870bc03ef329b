import type { VbmdReport } from '../bmd/report.js';
import { ds } from '../dicom/write-series.js';
import type { Volume } from '../imaging/volume.js';
import { DCM, SCT, SOP_CLASS, codeItem, vertebraCode, type Code } from './codes.js';
import { commonModules, dicomDateTimeUtc, softwareVersions, writePart10, type Dataset, type DicomObject } from './part10.js';
import type { LevelRoi } from './roi-masks.js';
import type { SourceInstance, SourceSeries } from './source-series.js';
import { uidFromName, type OutputUids } from './uids.js';

/**
 * DICOM Segmentation (PS3.3 A.51, BINARY) of the ROIs behind the report: one segment per ROI (per level the
 * ROI its vBMD was read on, plus the geometric ROI of its HU statistics when the model's ROI gave the value),
 * one frame per segment and source slice it touches, each frame derived from (and positioned on) that source
 * instance, same Frame of Reference.
 */
export interface SegmentInfo {
  number: number;
  roi: LevelRoi;
  label: string;
}

export interface SegResult {
  object: DicomObject;
  segments: SegmentInfo[];
  /** Source instances the frames derive from, in slice order. */
  referenced: SourceInstance[];
  /** ROI voxels on slices with no source instance (interpolated gaps): not in the SEG. */
  voxelsWithoutSource: number;
}

/** Segmented property type: the vertebra (CID 7603 via CID 7151), else bone. */
function propertyType(roi: LevelRoi): Code {
  return vertebraCode(roi.level) ?? ['272673000', 'SCT', 'Bone'];
}

export function segmentLabel(roi: LevelRoi): string {
  return `${roi.level} trabecular ROI (${roi.kind === 'model' ? 'model' : 'geometric'})`;
}

const segmentIdentification = 0x0062000a;
const referencedSegmentNumber = 0x0062000b;
const planePositionSequence = 0x00209113;
const imagePositionPatient = 0x00200032;

interface Frame {
  segment: number;
  k: number;
  instance: SourceInstance;
  pixels: Int32Array;
}

function framesOf(rois: readonly LevelRoi[], volume: Volume, bySlice: readonly (SourceInstance | undefined)[]): { frames: Frame[]; lost: number } {
  const plane = volume.dims[0] * volume.dims[1];
  const frames: Frame[] = [];
  let lost = 0;
  rois.forEach((roi, s) => {
    const byK = new Map<number, number[]>();
    for (const v of roi.voxels) {
      const k = Math.floor(v / plane);
      let list = byK.get(k);
      if (!list) byK.set(k, (list = []));
      list.push(v - k * plane);
    }
    for (const k of [...byK.keys()].sort((a, b) => a - b)) {
      const instance = bySlice[k];
      if (!instance) {
        lost += byK.get(k)!.length;
        continue;
      }
      frames.push({ segment: s + 1, k, instance, pixels: Int32Array.from(byK.get(k)!) });
    }
  });
  return { frames, lost };
}

/** Frames packed one bit per pixel, LSB first, contiguous across frames (PS3.5 8.1.1), padded to even length. */
function packFrames(frames: readonly Frame[], plane: number): Uint8Array {
  const n = Math.ceil((frames.length * plane) / 8);
  const out = new Uint8Array(n + (n % 2));
  frames.forEach((f, i) => {
    for (const p of f.pixels) {
      const bit = i * plane + p;
      out[bit >> 3] |= 1 << (bit & 7);
    }
  });
  return out;
}

function segmentItem(info: SegmentInfo, report: VbmdReport): Dataset {
  const algorithm = report.model && info.roi.kind === 'model' ? `${report.model.name} ${report.model.version}` : `${report.software?.name ?? 'vbmd'} ${report.software?.version ?? ''}`.trim();
  return {
    SegmentNumber: info.number,
    SegmentLabel: info.label.slice(0, 64),
    SegmentDescription: info.roi.kind === 'model' ? 'Trabecular region predicted by the vBMD network; the level vBMD is its mean density' : 'Elliptic mid-body trabecular region; the level HU median and mean are read on it',
    SegmentAlgorithmType: 'AUTOMATIC',
    SegmentAlgorithmName: algorithm.slice(0, 64),
    SegmentedPropertyCategoryCodeSequence: [codeItem(SCT.anatomicalStructure)],
    SegmentedPropertyTypeCodeSequence: [codeItem(propertyType(info.roi))],
    // CIELab (PS3.3 C.10.7.1.1), scaled to 0..65535: green for the reported ROI, cyan for the geometric one.
    RecommendedDisplayCIELabValue: info.roi.kind === 'model' ? [57000, 12000, 50000] : [58000, 24000, 28000],
  };
}

/** Per-frame functional groups (PS3.3 A.51.5.1): derived from its source slice, positioned on it, its segment. */
function perFrameGroups(f: Frame, positionIndex: number): Dataset {
  return {
    DerivationImageSequence: [
      {
        SourceImageSequence: [
          { ReferencedSOPClassUID: f.instance.sopClassUid, ReferencedSOPInstanceUID: f.instance.sopInstanceUid, PurposeOfReferenceCodeSequence: [codeItem(DCM.sourceImageForProcessing)] },
        ],
        DerivationCodeSequence: [codeItem(DCM.segmentation)],
      },
    ],
    FrameContentSequence: [{ DimensionIndexValues: [f.segment, positionIndex] }],
    PlanePositionSequence: [{ ImagePositionPatient: f.instance.positionMm.map(ds) }],
    SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.segment }],
  };
}

/** Multi-frame Dimension Module (PS3.3 C.7.6.17): frames indexed by segment number, then image position. */
function dimensionModule(dimensionOrganizationUid: string): Dataset {
  return {
    DimensionOrganizationType: '3D',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganizationUid }],
    DimensionIndexSequence: [
      { DimensionOrganizationUID: dimensionOrganizationUid, DimensionIndexPointer: referencedSegmentNumber, FunctionalGroupPointer: segmentIdentification, DimensionDescriptionLabel: 'Segment Number' },
      { DimensionOrganizationUID: dimensionOrganizationUid, DimensionIndexPointer: imagePositionPatient, FunctionalGroupPointer: planePositionSequence, DimensionDescriptionLabel: 'Image Position Patient' },
    ],
  };
}

export function buildSeg(
  report: VbmdReport,
  volume: Volume,
  source: SourceSeries,
  bySlice: readonly (SourceInstance | undefined)[],
  rois: readonly LevelRoi[],
  uids: OutputUids,
  createdAt: Date,
): SegResult {
  const [cols, rows] = volume.dims;
  const { frames, lost } = framesOf(rois, volume, bySlice);
  const segments: SegmentInfo[] = rois.map((roi, i) => ({ number: i + 1, roi, label: segmentLabel(roi) }));
  const positions = [...new Set(frames.map((f) => f.k))].sort((a, b) => a - b);
  const positionIndex = new Map(positions.map((k, i) => [k, i + 1]));
  const { date, time } = dicomDateTimeUtc(createdAt);
  const referenced = positions.map((k) => bySlice[k]!);
  const [sx, sy, sz] = volume.spacingMm;
  const dataset: Dataset = {
    ...commonModules(source, report, {
      sopClassUid: SOP_CLASS.segmentation,
      sopInstanceUid: uids.seg,
      seriesInstanceUid: uids.segSeries,
      modality: 'SEG',
      seriesNumber: 9801,
      seriesDescription: 'vBMD trabecular ROIs (AI)',
      createdAt,
    }),
    DeviceSerialNumber: `${report.software?.name ?? 'vbmd'}-${report.software?.version ?? 'unknown'}`,
    SoftwareVersions: softwareVersions(report),
    FrameOfReferenceUID: source.frameOfReferenceUid,
    PositionReferenceIndicator: '',
    InstanceNumber: '1',
    ContentDate: date,
    ContentTime: time,
    ImageType: ['DERIVED', 'PRIMARY'],
    ContentLabel: 'VBMD_ROI',
    ContentDescription: 'Trabecular ROIs of the vBMD measurement',
    ContentCreatorName: '',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: cols,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    SegmentationType: 'BINARY',
    SegmentsOverlap: 'YES',
    SegmentSequence: segments.map((s) => segmentItem(s, report)),
    NumberOfFrames: String(frames.length),
    ...dimensionModule(uidFromName('seg-dimension-organization', uids.seg)),
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: [...volume.direction[0], ...volume.direction[1]].map(ds) }],
        PixelMeasuresSequence: [{ PixelSpacing: [ds(sy), ds(sx)], SliceThickness: ds(sz), SpacingBetweenSlices: ds(sz) }],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map((f) => perFrameGroups(f, positionIndex.get(f.k)!)),
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: source.seriesInstanceUid,
        ReferencedInstanceSequence: referenced.map((i) => ({ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid })),
      },
    ],
    PixelData: [packFrames(frames, rows * cols).buffer],
    _vrMap: { PixelData: 'OB' },
  };
  return {
    object: { kind: 'seg', sopClassUid: SOP_CLASS.segmentation, sopInstanceUid: uids.seg, seriesInstanceUid: uids.segSeries, bytes: writePart10(dataset) },
    segments,
    referenced,
    voxelsWithoutSource: lost,
  };
}
