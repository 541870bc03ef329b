import { VbmdError, type VbmdErrorCode } from '../../util/errors.js';

/**
 * A DICOMweb failure a person can act on (like fhirclient's HttpError): which server, which study or
 * series, which HTTP status. `server` is the base URL without credentials or query, never a token.
 */
export interface DicomWebErrorDetails {
  server: string;
  status?: number;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  /** What was being done ("QIDO-RS study search", "WADO-RS series retrieve", ...). */
  operation?: string;
  /** How many attempts were made before giving up. */
  attempts?: number;
}

export class DicomWebError extends VbmdError {
  readonly server: string;
  readonly status?: number;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;

  constructor(code: VbmdErrorCode, message: string, details: DicomWebErrorDetails, options?: { cause?: unknown }) {
    super(code, message, { ...details }, options);
    this.server = details.server;
    this.status = details.status;
    this.studyInstanceUid = details.studyInstanceUid;
    this.seriesInstanceUid = details.seriesInstanceUid;
  }
}

export function isDicomWebError(e: unknown): e is DicomWebError {
  return e instanceof DicomWebError;
}

/** The VbmdError code that fits an HTTP status. */
export function codeForStatus(status: number): VbmdErrorCode {
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 404 || status === 410) return 'not-found';
  if (status === 400 || status === 406 || status === 415) return 'unsupported';
  return 'remote';
}

/** What a person should do about an HTTP status, as the end of a sentence. */
export function adviceForStatus(status: number): string {
  if (status === 401) return 'check the DICOMweb credentials (token or user/password) in the configuration';
  if (status === 403) return 'ask the PACS administrator to grant this service read access';
  if (status === 404 || status === 410) return 'check the study/series identifiers and the DICOMweb base URL';
  if (status === 406 || status === 415 || status === 400) return 'the server does not support this request; check the DICOMweb base URL and server version';
  if (status === 429) return 'the server is rate-limiting requests; try again later';
  if (status >= 500) return 'the server failed; try again later or ask the PACS administrator';
  return 'check the DICOMweb configuration';
}
