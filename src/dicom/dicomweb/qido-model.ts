import { VbmdError } from '../../util/errors.js';
import { num, str, strings, TAG, type DicomJsonDataset } from './dicom-json.js';

/**
 * What the DICOMweb client is asked and answers: QIDO-RS query and result shapes, call options, and the
 * conversions between them and DICOM JSON / QIDO matching values. Re-exported by client.ts.
 */

/** Study search. Exact-match values; at least one criterion is required (a PACS is never listed whole). */
export interface StudyQuery {
  patientId?: string;
  accessionNumber?: string;
  studyInstanceUid?: string;
  /** e.g. "CT": studies that contain at least one series of this modality. */
  modalitiesInStudy?: string;
  /** Inclusive range, "YYYYMMDD" or "YYYY-MM-DD"; either end may be left open. */
  studyDateFrom?: string;
  studyDateTo?: string;
  /** One page only (`limit`/`offset` as sent); without `limit` every page is fetched. */
  limit?: number;
  offset?: number;
}

export interface StudySummary {
  studyInstanceUid: string;
  patientId?: string;
  accessionNumber?: string;
  /** YYYYMMDD */
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  modalitiesInStudy: string[];
  seriesCount?: number;
  instanceCount?: number;
}

export interface SeriesQuery {
  /** Default none: every series. */
  modality?: string;
  limit?: number;
  offset?: number;
}

export interface SeriesSummary {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  /** Upper case, e.g. ["ORIGINAL","PRIMARY","AXIAL"]; empty when the server did not return it. */
  imageType: string[];
  sliceThicknessMm?: number;
  /** Convolution Kernel, when the server returns it for a series search (Orthanc does, from an instance). */
  convolutionKernel?: string;
  instanceCount?: number;
  /** Image planes when the series' instances hold several frames (Enhanced CT); see describeSeries. */
  frameCount?: number;
  bodyPartExamined?: string;
  patientId?: string;
  accessionNumber?: string;
}

export interface InstanceSummary {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid?: string;
  instanceNumber?: number;
  /** (0028,0008) when the server returns it; absent means one frame. */
  numberOfFrames?: number;
  imageType: string[];
  sliceThicknessMm?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface RetrieveOptions extends CallOptions {
  /** `*` (as stored, default) or a transfer syntax UID the server should transcode to. */
  transferSyntax?: string;
  /** Allocator for part bodies (default: arena blocks, see multipart.ts). */
  allocate?: (byteLength: number) => Buffer;
}

/** A series row of a QIDO answer as a SeriesSummary; undefined for a row without its UID. */
export function seriesSummary(ds: DicomJsonDataset, studyInstanceUid?: string): SeriesSummary | undefined {
  const seriesInstanceUid = str(ds, TAG.SeriesInstanceUID);
  const study = str(ds, TAG.StudyInstanceUID) ?? studyInstanceUid;
  if (!seriesInstanceUid || !study) return undefined;
  return {
    studyInstanceUid: study,
    seriesInstanceUid,
    modality: str(ds, TAG.Modality),
    seriesDescription: str(ds, TAG.SeriesDescription),
    seriesNumber: num(ds, TAG.SeriesNumber),
    imageType: strings(ds, TAG.ImageType).map((s) => s.toUpperCase()),
    sliceThicknessMm: num(ds, TAG.SliceThickness),
    convolutionKernel: strings(ds, TAG.ConvolutionKernel).join('\\') || undefined,
    instanceCount: num(ds, TAG.NumberOfSeriesRelatedInstances),
    bodyPartExamined: str(ds, TAG.BodyPartExamined),
    patientId: str(ds, TAG.PatientID),
    accessionNumber: str(ds, TAG.AccessionNumber),
  };
}

function normDate(d: string | undefined, which: string): string {
  if (d === undefined || d === '') return '';
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(d.trim());
  if (!m) throw new VbmdError('bad-input', `The ${which} study date "${d}" is not a date (YYYY-MM-DD or YYYYMMDD).`);
  return `${m[1]}${m[2]}${m[3]}`;
}

/** QIDO date range matching (PS3.4 C.2.2.2.5): "from-to", "from-", "-to", or one date. */
export function dateRange(from: string | undefined, to: string | undefined): string | undefined {
  const f = normDate(from, 'first');
  const t = normDate(to, 'last');
  if (!f && !t) return undefined;
  if (f && t && f === t) return f;
  return `${f}-${t}`;
}
