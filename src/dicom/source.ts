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
  /** Convolution Kernel (0018,1210) as recorded, e.g. "B30f", "STANDARD", "LUNG"; when known. */
  convolutionKernel?: string;
  instanceCount?: number;
  /** Image planes when instances hold several frames (Enhanced CT): what a stack is made of. */
  frameCount?: number;
  patientId?: string;
  accessionNumber?: string;
}

export interface LoadOptions {
  signal?: AbortSignal;
}

/** One study as a search found it: whose it is (patient, accession) and its series, without pixels. */
export interface FoundStudy {
  studyInstanceUid: string;
  identity: DicomPatientIdentity;
  series: SeriesCandidate[];
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
  /** The studies with this accession number or study UID, each with its identity and series, from one
   * search where the source can (DICOMweb: one QIDO-RS series search); [] when none is there (yet). */
  studiesWithSeries?(ref: Pick<StudyRef, 'studyInstanceUid' | 'accessionNumber'>, options?: LoadOptions): Promise<FoundStudy[]>;
}
