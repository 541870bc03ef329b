import { VbmdError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { parseContentType } from './content-type.js';
import { dicomJsonArraySchema, num, str, strings, TAG, type DicomJsonDataset } from './dicom-json.js';
import { DicomWebError } from './errors.js';
import { DicomWebHttp, RetriableBodyError, readBody, type DicomWebClientOptions, type RequestSpec, type ResponseBody } from './http.js';
import { MultipartParser, type MultipartPart } from './multipart.js';
import { IDENTITY_TAGS, identityFromDicomJson, type DicomPatientIdentity } from '../patient-identity.js';

/**
 * DICOMweb client (PS3.18): QIDO-RS searches parsed from `application/dicom+json` with zod, and WADO-RS
 * retrieves streamed part by part. Knows nothing of DicomSlice: `DicomWebSource` puts the two together.
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

export const ACCEPT_DICOM_JSON = 'application/dicom+json, application/json;q=0.9';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/** Accept header for a WADO-RS instance retrieve (PS3.18 §8.7.3.5.2). */
export function wadoAccept(transferSyntax = '*'): string {
  return `multipart/related; type="application/dicom"; transfer-syntax=${transferSyntax}`;
}

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;
/** Series fields series choice needs. ImageType and SliceThickness are instance-level: servers answer them
 * from a representative instance when asked by includefield (Orthanc does); `completeSeries` falls back to
 * one instance's metadata. */
const SERIES_FIELDS = [TAG.SeriesDescription, TAG.ImageType, TAG.SliceThickness, TAG.NumberOfSeriesRelatedInstances, TAG.SeriesNumber, TAG.BodyPartExamined];
const QIDO_PAGE = 500;
const MAX_QIDO_RESULTS = 100_000;
/** Series with at most this many instances are checked for multi-frame instances (describeSeries). */
const FEW_INSTANCES = 16;
/** QIDO bodies are metadata only; anything bigger is a broken server. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

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
    if (query.patientId !== undefined) params.PatientID = this.exact('patient ID', query.patientId);
    if (query.accessionNumber !== undefined) params.AccessionNumber = this.exact('accession number', query.accessionNumber);
    if (query.studyInstanceUid !== undefined) params.StudyInstanceUID = this.uid('study', query.studyInstanceUid);
    if (query.modalitiesInStudy !== undefined) params.ModalitiesInStudy = this.exact('modality', query.modalitiesInStudy);
    const range = dateRange(query.studyDateFrom, query.studyDateTo);
    if (range) params.StudyDate = range;
    if (!params.PatientID && !params.AccessionNumber && !params.StudyInstanceUID && !params.StudyDate) {
      throw new VbmdError('bad-input', `A study search on DICOMweb server ${this.server} needs a patient ID, accession number, study UID or date range.`);
    }
    const include = [TAG.StudyDescription, TAG.NumberOfStudyRelatedSeries, TAG.NumberOfStudyRelatedInstances, TAG.ModalitiesInStudy];
    const rows = await this.qido('/studies', params, include, query, { operation: 'QIDO-RS study search', signal: options.signal }, TAG.StudyInstanceUID);
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
    const study = this.uid('study', studyInstanceUid);
    const params: Record<string, string> = {};
    if (query.modality !== undefined) params.Modality = this.exact('modality', query.modality);
    const rows = await this.qido(`/studies/${study}/series`, params, SERIES_FIELDS, query, {
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
    if (match.accessionNumber !== undefined) params.AccessionNumber = this.exact('accession number', match.accessionNumber);
    if (match.studyInstanceUid !== undefined) params.StudyInstanceUID = this.uid('study', match.studyInstanceUid);
    if (match.modality !== undefined) params.Modality = this.exact('modality', match.modality);
    if (!params.AccessionNumber && !params.StudyInstanceUID) {
      throw new VbmdError('bad-input', `A series search on DICOMweb server ${this.server} needs an accession number or a study UID.`);
    }
    return this.qido('/series', params, [...SERIES_FIELDS, ...include], {}, {
      operation: 'QIDO-RS series search',
      signal: options.signal,
      ...(params.StudyInstanceUID ? { studyInstanceUid: params.StudyInstanceUID } : {}),
    }, TAG.SeriesInstanceUID);
  }

  async findInstances(studyInstanceUid: string, seriesInstanceUid: string, page: { limit?: number; offset?: number } = {}, options: CallOptions = {}): Promise<InstanceSummary[]> {
    const study = this.uid('study', studyInstanceUid);
    const series = this.uid('series', seriesInstanceUid);
    const rows = await this.qido(`/studies/${study}/series/${series}/instances`, {}, [TAG.InstanceNumber, TAG.ImageType, TAG.SliceThickness, TAG.SOPClassUID, TAG.NumberOfFrames], page, {
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
    const study = this.uid('study', studyInstanceUid);
    const what = { signal: options.signal, studyInstanceUid: study };
    const rows = await this.qido('/studies', { StudyInstanceUID: study }, Object.values(IDENTITY_TAGS), { limit: 2 }, { operation: 'QIDO-RS study search', ...what }, TAG.StudyInstanceUID);
    if (!rows[0]) return undefined;
    const identity = identityFromDicomJson(rows[0]);
    if (rows[0][IDENTITY_TAGS.IssuerOfAccessionNumberSequence]) return identity;
    const one = await this.qido(`/studies/${study}/instances`, {}, [TAG.SeriesInstanceUID], { limit: 1 }, { operation: 'QIDO-RS instance search', ...what }, TAG.SOPInstanceUID);
    const series = one[0] ? str(one[0], TAG.SeriesInstanceUID) : undefined;
    const sop = one[0] ? str(one[0], TAG.SOPInstanceUID) : undefined;
    if (!series || !sop) return identity;
    const issuer = identityFromDicomJson(await this.instanceMetadata(study, series, sop, options)).accessionIssuer;
    return issuer ? { ...identity, accessionIssuer: issuer } : identity;
  }

  /** WADO-RS metadata of one instance (`.../instances/{sop}/metadata`), as DICOM JSON. */
  async instanceMetadata(studyInstanceUid: string, seriesInstanceUid: string, sopInstanceUid: string, options: CallOptions = {}): Promise<DicomJsonDataset> {
    const study = this.uid('study', studyInstanceUid);
    const series = this.uid('series', seriesInstanceUid);
    const sop = this.uid('instance', sopInstanceUid);
    const spec: RequestSpec = {
      path: `/studies/${study}/series/${series}/instances/${sop}/metadata`,
      accept: ACCEPT_DICOM_JSON,
      operation: 'WADO-RS metadata retrieve',
      studyInstanceUid: study,
      seriesInstanceUid: series,
      signal: options.signal,
    };
    const rows = await this.http.request(spec, async (res) => this.parseJson(spec, res.headers['content-type'], await readBody(res.body, MAX_JSON_BYTES)));
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
    const study = this.uid('study', studyInstanceUid);
    const series = this.uid('series', seriesInstanceUid);
    return this.retrieveParts(`/studies/${study}/series/${series}`, handlers, options, {
      operation: 'WADO-RS series retrieve',
      studyInstanceUid: study,
      seriesInstanceUid: series,
    });
  }

  /** One instance (`.../instances/{sop}`) as Part-10 bytes. */
  async retrieveInstance(studyInstanceUid: string, seriesInstanceUid: string, sopInstanceUid: string, options: RetrieveOptions = {}): Promise<MultipartPart> {
    const study = this.uid('study', studyInstanceUid);
    const series = this.uid('series', seriesInstanceUid);
    const sop = this.uid('instance', sopInstanceUid);
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

  // ---------------------------------------------------------------- helpers

  private async qido(
    path: string,
    params: Record<string, string>,
    include: string[],
    page: { limit?: number; offset?: number },
    what: Pick<RequestSpec, 'operation' | 'studyInstanceUid' | 'seriesInstanceUid' | 'signal'>,
    keyTag: string,
  ): Promise<DicomJsonDataset[]> {
    const fetchPage = async (limit: number | undefined, offset: number | undefined): Promise<DicomJsonDataset[]> => {
      const spec: RequestSpec = {
        path,
        query: { ...params, includefield: include, limit, offset: offset || undefined },
        accept: ACCEPT_DICOM_JSON,
        ...what,
      };
      return this.http.request(spec, async (res) => {
        if (res.status === 204) {
          res.body.resume();
          return [];
        }
        return this.parseJson(spec, res.headers['content-type'], await readBody(res.body, MAX_JSON_BYTES));
      });
    };
    if (page.limit !== undefined) return fetchPage(page.limit, page.offset);
    // Every page: stop on a short page; guard against servers that ignore `offset` (same rows again).
    const all: DicomJsonDataset[] = [];
    const seen = new Set<string>();
    let offset = page.offset ?? 0;
    for (;;) {
      const rows = await fetchPage(QIDO_PAGE, offset);
      let fresh = 0;
      for (const r of rows) {
        const key = str(r, keyTag) ?? JSON.stringify(r);
        if (seen.has(key)) continue;
        seen.add(key);
        all.push(r);
        fresh++;
      }
      if (rows.length < QIDO_PAGE) break;
      if (fresh === 0) {
        log.warn({ server: this.server, operation: what.operation }, 'DICOMweb server ignored the QIDO offset; stopping paging');
        break;
      }
      if (all.length >= MAX_QIDO_RESULTS) {
        throw new DicomWebError('remote', `The ${what.operation} on DICOMweb server ${this.server} matched more than ${MAX_QIDO_RESULTS} results; narrow the search.`, { server: this.server });
      }
      offset += rows.length;
    }
    return all;
  }

  private parseJson(spec: RequestSpec, contentType: string | undefined, body: Buffer): DicomJsonDataset[] {
    if (body.length === 0) return [];
    const ct = parseContentType(contentType);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new DicomWebError('remote', `DICOMweb server ${this.server} answered the ${spec.operation} with ${ct.mediaType || 'an unknown content type'} that is not JSON; check that the base URL is the DICOMweb root.`, {
        server: this.server, studyInstanceUid: spec.studyInstanceUid, seriesInstanceUid: spec.seriesInstanceUid,
      });
    }
    const parsed = dicomJsonArraySchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new DicomWebError('remote', `DICOMweb server ${this.server} answered the ${spec.operation} with JSON that is not DICOM JSON (PS3.18 Annex F) at ${issue.path.join('.') || 'top level'}: ${issue.message}.`, {
        server: this.server, studyInstanceUid: spec.studyInstanceUid, seriesInstanceUid: spec.seriesInstanceUid,
      });
    }
    return parsed.data;
  }

  private uid(kind: string, uid: string): string {
    const u = uid.trim();
    if (!UID_RE.test(u) || u.length > 64) {
      throw new VbmdError('bad-input', `"${uid}" is not a valid DICOM ${kind} UID (digits and dots, at most 64 characters).`);
    }
    return u;
  }

  /** An exact-match QIDO value: wildcards and multi-value separators would widen the match silently. */
  private exact(what: string, value: string): string {
    const v = value.trim();
    if (v === '' || /[*?\\]/.test(v) || v.length > 64) {
      throw new VbmdError('bad-input', `The ${what} "${value}" cannot be searched exactly (empty, too long, or contains * ? or \\).`);
    }
    return v;
  }
}

/**
 * Feeds a response body to the multipart parser from 'data' events and hands each part to `onPart` as
 * soon as it is complete. Synchronous handlers keep the hot path free of promises (one per 64 KiB chunk
 * costs measurable time at hundreds of MB/s); an async handler pauses the socket until it settles, so a
 * slow consumer applies backpressure instead of buffering the response.
 */
function consumeMultipart(body: ResponseBody, parser: MultipartParser, onPart: (part: MultipartPart) => void | Promise<void>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let n = 0;
    let done = false;
    const queue: MultipartPart[] = [];
    let waiting = false;
    let ended = false;
    const fail = (e: unknown): void => {
      if (done) return;
      done = true;
      body.destroy();
      reject(e);
    };
    const finish = (): void => {
      if (done) return;
      try {
        parser.end();
      } catch (e) {
        fail(e);
        return;
      }
      done = true;
      resolve(n);
    };
    const drain = (): void => {
      while (queue.length > 0 && !done) {
        const part = queue.shift() as MultipartPart;
        let r: void | Promise<void>;
        try {
          r = onPart(part);
        } catch (e) {
          fail(e);
          return;
        }
        n++;
        if (r instanceof Promise) {
          waiting = true;
          body.pause();
          r.then(() => {
            waiting = false;
            if (done) return;
            body.resume();
            drain();
          }, fail);
          return;
        }
      }
      if (ended && queue.length === 0) finish();
    };
    body.on('data', (chunk: Buffer) => {
      if (done) return;
      try {
        for (const p of parser.push(chunk)) queue.push(p);
      } catch (e) {
        fail(e);
        return;
      }
      if (!waiting) drain();
    });
    body.on('end', () => {
      ended = true;
      if (!waiting) drain();
    });
    body.on('error', fail);
    body.on('close', () => {
      if (!ended) fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    });
  });
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
    instanceCount: num(ds, TAG.NumberOfSeriesRelatedInstances),
    bodyPartExamined: str(ds, TAG.BodyPartExamined),
    patientId: str(ds, TAG.PatientID),
    accessionNumber: str(ds, TAG.AccessionNumber),
  };
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
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

/** Runs `fn` over `items` with at most `limit` in flight; rejects on the first failure (others still settle). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, () => worker());
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}

export { RetriableBodyError };
