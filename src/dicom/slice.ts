import type { Vec3 } from '../imaging/volume.js';

/**
 * One parsed CT image (one SOP instance, single frame): the header fields series choice and volume
 * assembly need, and its stored pixel values, already decoded from any compressed transfer syntax.
 * Produced by `parseDicomSlice` (folder and DICOMweb sources alike); consumed by series choice and
 * volume assembly.
 */
export interface DicomSlice {
  /** File path or DICOMweb part description, for error messages. */
  source: string;
  sopInstanceUid: string;
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
  numberOfFrames: number;
  transferSyntaxUid: string;
  /** Stored values (before rescale), rows*columns, decoded. */
  pixels: Int16Array | Uint16Array;
}
