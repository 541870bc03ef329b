import { VbmdError } from '../../util/errors.js';
import { parseContentType } from './content-type.js';
import { num, str, strings, TAG, type DicomJsonDataset } from './dicom-json.js';
import { DicomWebError } from './errors.js';
import { DicomWebHttp, RetriableBodyError, readBody, type DicomWebClientOptions, type RequestSpec } from './http.js';
import { MultipartParser, type MultipartPart } from './multipart.js';
import { consumeMultipart } from './multipart-stream.js';
import { mapLimit } from '../../util/map-limit.js';
import { ACCEPT_DICOM_JSON, MAX_JSON_BYTES, checkedUid, exactValue, parseDicomJson, qidoSearch } from './qido.js';
import type { CallOptions, InstanceSummary, RetrieveOptions, SeriesQuery, SeriesSummary, StudyQuery, StudySummary } from './qido-model.js';
import { dateRange, seriesSummary } from './qido-model.js';
import { IDENTITY_TAGS, identityFromDicomJson, type DicomPatientIdentity } from '../patient-identity.js';

/**
 * DICOMweb client (PS3.18): QIDO-RS searches parsed from `application/dicom+json` with zod (qido.ts), and
 * WADO-RS retrieves streamed part by part (multipart-stream.ts). Knows nothing of DicomSlice:
 * `DicomWebSource` puts the two together. Query and result shapes are in qido-model.ts.
 */

export type { CallOptions, InstanceSummary, RetrieveOptions, SeriesQuery, SeriesSummary, StudyQuery, StudySummary } from './qido-model.js';
export { dateRange, seriesSummary } from './qido-model.js';
export { ACCEPT_DICOM_JSON } from './qido.js';

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/** Accept header for a WADO-RS instance retrieve (PS3.18 §8.7.3.5.2). */
export function wadoAccept(transferSyntax = '*'): string {
  return `multipart/related; type="application/dicom"; transfer-syntax=${transferSyntax}`;
}

/** Series fields series choice needs. ImageType and SliceThickness are instance-level: servers answer them
 * from a representative instance when asked by includefield (Orthanc does); `completeSeries` falls back to
 * one instance's metadata. */
const SERIES_FIELDS = [
  TAG.SeriesDescription,
  TAG.ImageType,
  TAG.SliceThickness,
  TAG.ConvolutionKernel,
  TAG.NumberOfSeriesRelatedInstances,
  TAG.SeriesNumber,
  TAG.BodyPartExamined,
];
/** Series with at most this many instances are checked for multi-frame instances (describeSeries). */
const FEW_INSTANCES = 16;

export class DicomWebClient {
  readonly http: DicomWebHttp;

  constructor(options: DicomWebClientOptions) {
    this.http = new DicomWebHttp(options);
  }

  get server(): string {
    return this.http.server;
  }

  close(): void {
    this.http.close();
  }

  /**
   * Readiness probe: one QIDO-RS study search that matches nothing, no retries, short timeout. Resolves if
   * the server answers 2xx (credentials accepted); rejects with the DicomWebError a person needs otherwise.
   */
  async ping(options: CallOptions & { timeoutMs?: number } = {}): Promise<void> {
    const spec: RequestSpec = {
      path: '/studies',
      // 2.25.0 is a valid UID no PACS holds: the search is cheap and returns [].
      query: { StudyInstanceUID: '2.25.0', limit: 1 },
      accept: ACCEPT_DICOM_JSON,
      operation: 'QIDO-RS readiness check',
      signal: options.signal,
      retries: 0,
      timeoutMs: options.timeoutMs ?? 5000,
    };
    await this.http.request(spec, async (res) => {
      await readBody(res.body, MAX_JSON_BYTES);
    });
  }

  // ---------------------------------------------------------------- QIDO-RS

  async findStudies(query: StudyQuery, options: CallOptions = {}): Promise<StudySummary[]> {
    const params: Record<string, string> = {};
    if (query.patientId !== undefined) params.PatientID = exactValue('patient ID', query.patientId);
    if (query.accessionNumber !== undefined) params.AccessionNumber = exactValue('accession number', query.accessionNumber);
    if (query.studyInstanceUid !== undefined) params.StudyInstanceUID = checkedUid('study', query.studyInstanceUid);
    if (query.modalitiesInStudy !== undefined) params.ModalitiesInStudy = exactValue('modality', query.modalitiesInStudy);
    const range = dateRange(query.studyDateFrom, query.studyDateTo);
    if (range) params.StudyDate = range;
    if (!params.PatientID && !params.AccessionNumber && !params.StudyInstanceUID && !params.StudyDate) {
      throw new VbmdError('bad-input', `A study search on DICOMweb server ${this.server} needs a patient ID, accession number, study UID or date range.`);
    }
    const include = [TAG.StudyDescription, TAG.NumberOfStudyRelatedSeries, TAG.NumberOfStudyRelatedInstances, TAG.ModalitiesInStudy];
    const rows = await qidoSearch(this.http, '/studies', params, include, query, { operation: 'QIDO-RS study search', signal: options.signal }, TAG.StudyInstanceUID);
    const out: StudySummary[] = [];
    for (const ds of rows) {
      const studyInstanceUid = str(ds, TAG.StudyInstanceUID);
      if (!studyInstanceUid) continue; // PS3.18 requires it; skip a malformed row rather than fail the search
      out.push({
        studyInstanceUid,
        patientId: str(ds, TAG.PatientID),
        accessionNumber: str(ds, TAG.AccessionNumber),
        studyDate: str(ds, TAG.StudyDate),
        studyTime: str(ds, TAG.StudyTime),
        studyDescription: str(ds, TAG.StudyDescription),
        modalitiesInStudy: strings(ds, TAG.ModalitiesInStudy).filter((m) => m !== ''),
        seriesCount: num(ds, TAG.NumberOfStudyRelatedSeries),
        instanceCount: num(ds, TAG.NumberOfStudyRelatedInstances),
      });
    }
    return out;
  }

  async findSeries(studyInstanceUid: string, query: SeriesQuery = {}, options: CallOptions = {}): Promise<SeriesSummary[]> {
    const study = checkedUid('study', studyInstanceUid);
    const params: Record<string, string> = {};
    if (query.modality !== undefined) params.Modality = exactValue('modality', query.modality);
    const rows = await qidoSearch(this.http, `/studies/${study}/series`, params, SERIES_FIELDS, query, {
      operation: 'QIDO-RS series search',
      signal: options.signal,
      studyInstanceUid: study,
    }, TAG.SeriesInstanceUID);
    return rows.flatMap((ds) => seriesSummary(ds, study) ?? []);
  }

  /**
   * Every series of the studies with this accession number or study UID, in ONE search (PS3.18 10.6:
   * `GET {service}/series` takes study-level matching keys), with the patient and study attributes each
   * row carries (`include`). The rows are DICOM JSON, one per series.
   */
  async searchSeries(match: { accessionNumber?: string; studyInstanceUid?: string; modality?: string }, include: readonly string[], options: CallOptions = {}): Promise<DicomJsonDataset[]> {
    const params: Record<string, string> = {};
    if (match.accessionNumber !== undefined) params.AccessionNumber = exactValue('accession number', match.accessionNumber);
    if (match.studyInstanceUid !== undefined) params.StudyInstanceUID = checkedUid('study', match.studyInstanceUid);
    if (match.modality !== undefined) params.Modality = exactValue('modality', match.modality);
    if (!params.AccessionNumber && !params.StudyInstanceUID) {
      throw new VbmdError('bad-input', `A series search on DICOMweb server ${this.server} needs an accession number or a study UID.`);
    }
    return qidoSearch(this.http, '/series', params, [...SERIES_FIELDS, ...include], {}, {
      operation: 'QIDO-RS series search',
      signal: options.signal,
      ...(params.StudyInstanceUID ? { studyInstanceUid: params.StudyInstanceUID } : {}),
    }, TAG.SeriesInstanceUID);
  }

  async findInstances(studyInstanceUid: string, seriesInstanceUid: string, page: { limit?: number; offset?: number } = {}, options: CallOptions = {}): Promise<InstanceSummary[]> {
    const study = checkedUid('study', studyInstanceUid);
    const series = checkedUid('series', seriesInstanceUid);
    const rows = await qidoSearch(this.http, `/studies/${study}/series/${series}/instances`, {}, [TAG.InstanceNumber, TAG.ImageType, TAG.SliceThickness, TAG.SOPClassUID, TAG.NumberOfFrames], page, {
      operation: 'QIDO-RS instance search',
      signal: options.signal,
      studyInstanceUid: study,
      seriesInstanceUid: series,
    }, TAG.SOPInstanceUID);
    const out: InstanceSummary[] = [];
    for (const ds of rows) {
      const sopInstanceUid = str(ds, TAG.SOPInstanceUID);
      if (!sopInstanceUid) continue;
      out.push({
        studyInstanceUid: study,
        seriesInstanceUid: series,
        sopInstanceUid,
        sopClassUid: str(ds, TAG.SOPClassUID),
        instanceNumber: num(ds, TAG.InstanceNumber),
        numberOfFrames: num(ds, TAG.NumberOfFrames),
        imageType: strings(ds, TAG.ImageType).map((s) => s.toUpperCase()),
        sliceThicknessMm: num(ds, TAG.SliceThickness),
      });
    }
    return out;
  }

  /**
   * The study's patient and accession attributes from a QIDO-RS study search; undefined when not found.
   * Servers that do not index IssuerOfAccessionNumberSequence at study level (Orthanc 1.10) leave it out:
   * it is then read from one instance's metadata.
   */
  async findStudyIdentity(studyInstanceUid: string, options: CallOptions = {}): Promise<DicomPatientIdentity | undefined> {
    const study = checkedUid('study', studyInstanceUid);
    const what = { signal: options.signal, studyInstanceUid: study };
    const rows = await qidoSearch(this.http, '/studies', { StudyInstanceUID: study }, Object.values(IDENTITY_TAGS), { limit: 2 }, { operation: 'QIDO-RS study search', ...what }, TAG.StudyInstanceUID);
    if (!rows[0]) return undefined;
    const identity = identityFromDicomJson(rows[0]);
    if (rows[0][IDENTITY_TAGS.IssuerOfAccessionNumberSequence]) return identity;
    const one = await qidoSearch(this.http, `/studies/${study}/instances`, {}, [TAG.SeriesInstanceUID], { limit: 1 }, { operation: 'QIDO-RS instance search', ...what }, TAG.SOPInstanceUID);
    const series = one[0] ? str(one[0], TAG.SeriesInstanceUID) : undefined;
    const sop = one[0] ? str(one[0], TAG.SOPInstanceUID) : undefined;
    if (!series || !sop) return identity;
    const issuer = identityFromDicomJson(await this.instanceMetadata(study, series, sop, options)).accessionIssuer;
    return issuer ? { ...identity, accessionIssuer: issuer } : identity;
  }

  /** WADO-RS metadata of one instance (`.../instances/{sop}/metadata`), as DICOM JSON. */
  async instanceMetadata(studyInstanceUid: string, seriesInstanceUid: string, sopInstanceUid: string, options: CallOptions = {}): Promise<DicomJsonDataset> {
    const study = checkedUid('study', studyInstanceUid);
    const series = checkedUid('series', seriesInstanceUid);
    const sop = checkedUid('instance', sopInstanceUid);
    const spec: RequestSpec = {
      path: `/studies/${study}/series/${series}/instances/${sop}/metadata`,
      accept: ACCEPT_DICOM_JSON,
      operation: 'WADO-RS metadata retrieve',
      studyInstanceUid: study,
      seriesInstanceUid: series,
      signal: options.signal,
    };
    const rows = await this.http.request(spec, async (res) => parseDicomJson(this.server, spec, res.headers['content-type'], await readBody(res.body, MAX_JSON_BYTES)));
    if (rows.length === 0) {
      throw new DicomWebError('not-found', `DICOMweb server ${this.server} returned no metadata for instance ${sop} of series ${series}.`, { server: this.server, studyInstanceUid: study, seriesInstanceUid: series });
    }
    return rows[0];
  }

  /**
   * Series search plus, for series whose QIDO answer lacks ImageType or SliceThickness, the metadata of
   * one instance (bounded concurrency). Series choice needs both to skip localizers and prefer thin slices.
   */
  async describeSeries(studyInstanceUid: string, query: SeriesQuery = {}, options: CallOptions & { concurrency?: number } = {}): Promise<SeriesSummary[]> {
    return this.completeSeries(await this.findSeries(studyInstanceUid, query, options), options);
  }

  /**
   * What a series search left out that series choice needs: for series of a few instances their frame
   * count (Enhanced CT), for series whose answer lacks ImageType or SliceThickness one instance's values.
   * Nothing is asked for a series the search described fully (the usual CT series on Orthanc).
   */
  async completeSeries(series: SeriesSummary[], options: CallOptions & { concurrency?: number } = {}): Promise<SeriesSummary[]> {
    await mapLimit(series, options.concurrency ?? 4, async (s) => {
      if (s.instanceCount !== undefined && s.instanceCount <= FEW_INSTANCES) await this.countFrames(s, options);
      if (s.imageType.length > 0 && s.sliceThicknessMm !== undefined) return;
      const [first] = await this.findInstances(s.studyInstanceUid, s.seriesInstanceUid, { limit: 1 }, options);
      if (!first) return;
      let imageType = first.imageType;
      let thickness = first.sliceThicknessMm;
      if (imageType.length === 0 || thickness === undefined) {
        const md = await this.instanceMetadata(s.studyInstanceUid, s.seriesInstanceUid, first.sopInstanceUid, options);
        if (imageType.length === 0) imageType = strings(md, TAG.ImageType).map((x) => x.toUpperCase());
        thickness ??= num(md, TAG.SliceThickness);
      }
      if (s.imageType.length === 0) s.imageType = imageType;
      s.sliceThicknessMm ??= thickness;
    });
    return series;
  }

  /**
   * A series of a few instances may be multi-frame (an Enhanced CT series is often one instance): sum
   * their NumberOfFrames, so series choice counts image planes, not instances.
   */
  private async countFrames(s: SeriesSummary, options: CallOptions): Promise<void> {
    const instances = await this.findInstances(s.studyInstanceUid, s.seriesInstanceUid, { limit: FEW_INSTANCES + 1 }, options);
    const frames = instances.reduce((n, i) => n + Math.max(1, Math.round(i.numberOfFrames ?? 1)), 0);
    if (instances.length === s.instanceCount && frames > instances.length) s.frameCount = frames;
  }

  // ---------------------------------------------------------------- WADO-RS

  /**
   * Streams the instances of a series (`GET .../studies/{s}/series/{se}`), calling `onPart` for each part as
   * it arrives. The whole exchange is retried on network errors, retriable statuses and truncated bodies:
   * `onStart` is called before each attempt so the caller can drop what an earlier attempt produced.
   * Returns the number of parts.
   */
  async retrieveSeries(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    handlers: { onStart?: () => void; onPart: (part: MultipartPart) => void | Promise<void> },
    options: RetrieveOptions = {},
  ): Promise<number> {
    const study = checkedUid('study', studyInstanceUid);
    const series = checkedUid('series', seriesInstanceUid);
    return this.retrieveParts(`/studies/${study}/series/${series}`, handlers, options, {
      operation: 'WADO-RS series retrieve',
      studyInstanceUid: study,
      seriesInstanceUid: series,
    });
  }

  /** One instance (`.../instances/{sop}`) as Part-10 bytes. */
  async retrieveInstance(studyInstanceUid: string, seriesInstanceUid: string, sopInstanceUid: string, options: RetrieveOptions = {}): Promise<MultipartPart> {
    const study = checkedUid('study', studyInstanceUid);
    const series = checkedUid('series', seriesInstanceUid);
    const sop = checkedUid('instance', sopInstanceUid);
    let got: MultipartPart | undefined;
    const n = await this.retrieveParts(`/studies/${study}/series/${series}/instances/${sop}`, {
      onStart: () => {
        got = undefined;
      },
      onPart: (p) => {
        got ??= p;
      },
    }, options, { operation: 'WADO-RS instance retrieve', studyInstanceUid: study, seriesInstanceUid: series });
    if (!got || n !== 1) {
      throw new DicomWebError('remote', `DICOMweb server ${this.server} returned ${n} parts for instance ${sop} of series ${series}, expected 1.`, { server: this.server, studyInstanceUid: study, seriesInstanceUid: series });
    }
    return got;
  }

  private async retrieveParts(
    path: string,
    handlers: { onStart?: () => void; onPart: (part: MultipartPart) => void | Promise<void> },
    options: RetrieveOptions,
    what: Pick<RequestSpec, 'operation' | 'studyInstanceUid' | 'seriesInstanceUid'>,
  ): Promise<number> {
    // streamed: consumeMultipart hands each chunk to the parser synchronously (it copies what it keeps).
    const spec: RequestSpec = { path, accept: wadoAccept(options.transferSyntax ?? '*'), signal: options.signal, streamed: true, ...what };
    const gate = this.http.retrievalGate;
    if (!gate) return this.retrieveOnce(spec, handlers, options, what);
    const lease = await gate.begin({ operation: what.operation, studyInstanceUid: what.studyInstanceUid, signal: options.signal });
    const onPart = (part: MultipartPart): void | Promise<void> => {
      const r = handlers.onPart(part);
      const pause = lease.received(part.body.length);
      return r instanceof Promise || pause instanceof Promise ? Promise.all([r, pause]).then(() => undefined) : undefined;
    };
    try {
      const n = await this.retrieveOnce(spec, { ...handlers, onPart }, options, what);
      lease.end('ok');
      return n;
    } catch (e) {
      lease.end('error');
      throw e;
    }
  }

  private retrieveOnce(
    spec: RequestSpec,
    handlers: { onStart?: () => void; onPart: (part: MultipartPart) => void | Promise<void> },
    options: RetrieveOptions,
    what: Pick<RequestSpec, 'operation' | 'studyInstanceUid' | 'seriesInstanceUid'>,
  ): Promise<number> {
    return this.http.request(spec, async (res) => {
      const ct = parseContentType(firstHeader(res.headers['content-type']));
      const boundary = ct.params.boundary;
      if (ct.mediaType !== 'multipart/related' || !boundary) {
        throw new DicomWebError('unsupported', `DICOMweb server ${this.server} answered the ${what.operation} with "${ct.mediaType || 'no content type'}" instead of multipart/related DICOM; check that the base URL is the DICOMweb root.`, {
          server: this.server, studyInstanceUid: what.studyInstanceUid, seriesInstanceUid: what.seriesInstanceUid, status: res.status,
        });
      }
      handlers.onStart?.();
      return consumeMultipart(res.body, new MultipartParser(boundary, { allocate: options.allocate }), handlers.onPart);
    });
  }
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export { RetriableBodyError };
