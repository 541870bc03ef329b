import type { Vec3 } from '../imaging/volume.js';
import type { DicomPatientIdentity } from './patient-identity.js';

/**
 * One parsed CT image plane: a single-frame instance, or one frame of a multi-frame one (Enhanced CT),
 * with the header fields series choice and volume assembly need (per frame from the functional groups,
 * PS3.3 C.7.6.16) and its stored pixel values, already decoded from any compressed transfer syntax.
 * Produced by `parseDicomFrames` (folder and DICOMweb sources alike); consumed by series choice and
 * volume assembly. `sliceKey` identifies it.
 */
export interface DicomSlice {
  /** File path or DICOMweb part description, for error messages. */
  source: string;
  sopInstanceUid: string;
  /** 1-based frame number within a multi-frame instance; absent for a single-frame instance. */
  frameNumber?: number;
  /**
   * UIDs the source lacked (empty or missing) that vbmd substituted (src/dicom/substitute-uids.ts): the
   * values in the fields above are then derived from the grouping attributes, not the PACS's.
   */
  substitutedUids?: ('study' | 'series' | 'instance')[];
  acquisitionNumber?: number;
  sopClassUid?: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality?: string;
  /** (0008,0008) values, upper case, e.g. ["ORIGINAL","PRIMARY","AXIAL"]. */
  imageType: string[];
  seriesDescription?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  patientId?: string;
  accessionNumber?: string;
  /** Patient and accession as the header states them, for the chart cross-check (PHI: never logged). */
  identity?: DicomPatientIdentity;
  studyDate?: string;
  acquisitionDate?: string;
  acquisitionTime?: string;
  manufacturer?: string;
  manufacturerModelName?: string;
  kvp?: number;
  contrastAgent?: string;
  gantryTiltDeg?: number;
  rows: number;
  columns: number;
  /** (0028,0030): [row spacing (between rows), column spacing (between columns)] in mm. */
  pixelSpacingMm?: [number, number];
  sliceThicknessMm?: number;
  /** (0018,1210), e.g. "B30f", "STANDARD", "LUNG" (series choice prefers a soft-tissue kernel). */
  convolutionKernel?: string;
  imagePositionMm?: Vec3;
  /** (0020,0037): row direction cosine then column direction cosine. */
  imageOrientation?: [number, number, number, number, number, number];
  rescaleSlope: number;
  rescaleIntercept: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelPaddingValue?: number;
  pixelPaddingRangeLimit?: number;
  /** Frames of the instance this plane comes from (1 for single-frame). */
  numberOfFrames: number;
  transferSyntaxUid: string;
  /** Stored values (before rescale), rows*columns, decoded. */
  pixels: Int16Array | Uint16Array;
}

/** One image plane's identity: the instance, and the frame within a multi-frame instance. */
export function sliceKey(s: Pick<DicomSlice, 'sopInstanceUid' | 'frameNumber'>): string {
  return s.frameNumber === undefined ? s.sopInstanceUid : `${s.sopInstanceUid}#${s.frameNumber}`;
}

/** Everything of a DicomSlice except the pixels: what a header-only scan yields. */
export type DicomSliceHeader = Omit<DicomSlice, 'pixels'>;
