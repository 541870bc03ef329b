/** DICOMweb (PS3.18) client and DicomSource adapter; see source.ts for the entry point. */
export { DicomWebSource, type DicomWebSourceOptions } from './source.js';
export {
  DicomWebClient,
  dateRange,
  wadoAccept,
  type StudyQuery,
  type StudySummary,
  type SeriesQuery,
  type SeriesSummary,
  type InstanceSummary,
  type RetrieveOptions,
} from './client.js';
export { DicomWebError, isDicomWebError, type DicomWebErrorDetails } from './errors.js';
export { type DicomWebAuth, type DicomWebClientOptions, DICOMWEB_RETRY } from './http.js';
export { parseContentType, type MediaType } from './content-type.js';
export { MultipartParser, MultipartError, parseMultipartStream, type MultipartPart } from './multipart.js';
export { dicomWebOptionsFromConfig, dicomWebSourceFromConfig } from './from-config.js';
