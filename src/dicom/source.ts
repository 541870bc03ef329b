import type { DicomPatientIdentity } from './patient-identity.js';
import type { DicomSlice } from './slice.js';

/**
 * Where the pipeline gets images from. Two adapters sit behind it: a folder of files (sandbox, CLI) and a
 * DICOMweb server (production). Series choice works on `SeriesCandidate`s so a remote source can pick the
 * series from QIDO-RS metadata before moving any pixels.
 */
export interface StudyRef {
  studyInstanceUid?: string;
  accessionNumber?: string;
  patientId?: string;
}

export interface SeriesCandidate {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  imageType?: string[];
  sliceThicknessMm?: number;
  instanceCount?: number;
  /** Image planes when instances hold several frames (Enhanced CT): what a stack is made of. */
  frameCount?: number;
  patientId?: string;
  accessionNumber?: string;
}

export interface LoadOptions {
  signal?: AbortSignal;
}

export interface DicomSource {
  /** Human-readable name of the source ("folder /x", "DICOMweb https://pacs/dicom-web"), never PHI. */
  readonly description: string;
  /** All series of the study (or of every study in a folder when `ref` is empty). */
  findSeries(ref: StudyRef, options?: LoadOptions): Promise<SeriesCandidate[]>;
  /** Every instance of one series, parsed and decoded. Rejects with a VbmdError, never a partial list. */
  loadSlices(series: SeriesCandidate, options?: LoadOptions): Promise<DicomSlice[]>;
  /** Who the study says it belongs to (patient, accession and their issuers), without reading pixels;
   * undefined when the study is not there. */
  studyIdentity(studyInstanceUid: string, options?: LoadOptions): Promise<DicomPatientIdentity | undefined>;
}
