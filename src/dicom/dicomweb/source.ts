import { isVbmdError } from '../../util/errors.js';
import { parseDicomFrames, peekTransferSyntax, prepareCodecFor } from '../parse.js';
import { transferSyntaxInfo } from '../codecs/index.js';
import { sliceKey, type DicomSlice } from '../slice.js';
import type { DicomSliceHeader } from '../parse.js';
import { HuVolumeBuilder, finishVolume, hasIntegerHu, planVolume, assembleVolume, type AssembleOptions, type VolumePlan } from '../assemble-volume.js';
import type { HuArray, LoadedVolume } from '../../imaging/volume.js';
import { permuteSlabsInPlace } from './slab-permute.js';
import type { DicomPatientIdentity } from '../patient-identity.js';
import type { DicomSource, FoundStudy, LoadOptions, SeriesCandidate, StudyRef } from '../source.js';
import type { VolumeStreamingSource } from '../load-study.js';
import {
  DicomWebClient,
  EXPLICIT_VR_LITTLE_ENDIAN,
  type InstanceSummary,
  type StudyQuery,
  type StudySummary,
} from './client.js';
import { mapLimit } from '../../util/map-limit.js';
import { DicomWebError } from './errors.js';
import { StopRequest, type DicomWebClientOptions } from './http.js';
import { BufferPool, type MultipartPart } from './multipart.js';
import { seriesCandidate, studiesWithSeries } from './study-search.js';

/**
 * `DicomSource` over a DICOMweb server (the PACS in production).
 *
 * - `findSeries` resolves a StudyRef (study UID, accession number and/or patient ID) to studies with
 *   QIDO-RS, then lists their series with the fields series choice needs, without moving pixels.
 * - `loadSlices` retrieves one series with WADO-RS as a stream and parses each instance as it arrives.
 *   It asks for the transfer syntax as stored (`*`: no transcoding work on the PACS, fewer bytes when
 *   compressed) and, if an instance arrives in a syntax this service cannot decode, asks again for
 *   Explicit VR Little Endian. It resolves with every instance or rejects: never a partial series.
 */
export interface DicomWebSourceOptions extends DicomWebClientOptions {
  /** Series modality `findSeries` asks for (default "CT"; null lists every series). */
  seriesModality?: string | null;
  /** "series": one WADO-RS series request (default); "instances": one request per instance, in parallel. */
  retrieve?: 'series' | 'instances';
  /** Parallel instance requests in "instances" mode (default 4). */
  instanceConcurrency?: number;
  /** First transfer syntax to ask for: "*" (as stored, default) or a UID. */
  transferSyntax?: string;
  /**
   * Instance parser (one slice per frame), replaceable for tests. Default: `parseDicomFrames` from
   * src/dicom/parse.ts, run synchronously once the transfer syntax's codec is loaded (`prepareCodecFor`,
   * once per syntax).
   */
  parseFrames?: (bytes: Uint8Array, source: string) => DicomSlice[] | Promise<DicomSlice[]>;
}

/** Stops a stream whose instances need a codec we lack, so the series can be asked for uncompressed. */
class NeedUncompressed extends StopRequest {
  constructor(readonly transferSyntaxUid: string) {
    super(`transfer syntax ${transferSyntaxUid} cannot be decoded here`);
  }
}

export class DicomWebSource implements DicomSource, VolumeStreamingSource {
  readonly description: string;
  readonly client: DicomWebClient;
  private readonly seriesModality: string | null;
  private readonly retrieveMode: 'series' | 'instances';
  private readonly instanceConcurrency: number;
  private readonly transferSyntax: string;
  private readonly parseFrames: (bytes: Uint8Array, source: string) => DicomSlice[] | Promise<DicomSlice[]>;
  /** Transfer syntaxes whose codec is loaded, so parts can be parsed without awaiting. */
  private readonly ready = new Set<string>();

  constructor(options: DicomWebSourceOptions) {
    this.client = new DicomWebClient(options);
    this.description = `DICOMweb ${this.client.server}`;
    this.seriesModality = options.seriesModality === undefined ? 'CT' : options.seriesModality;
    this.retrieveMode = options.retrieve ?? 'series';
    this.instanceConcurrency = options.instanceConcurrency ?? 4;
    this.transferSyntax = options.transferSyntax ?? '*';
    this.parseFrames = options.parseFrames ?? parseDicomFrames;
  }

  /** Releases kept-alive connections (call when done with the source). */
  close(): void {
    this.client.close();
  }

  /** Readiness probe (no retries, 5 s timeout by default): resolves when the server answers and accepts our credentials. */
  ping(options: LoadOptions & { timeoutMs?: number } = {}): Promise<void> {
    return this.client.ping(options);
  }

  /** QIDO-RS study search (by accession number, patient ID, study UID, modality, date range). */
  findStudies(query: StudyQuery, options: LoadOptions = {}): Promise<StudySummary[]> {
    return this.client.findStudies(query, options);
  }

  studyIdentity(studyInstanceUid: string, options: LoadOptions = {}): Promise<DicomPatientIdentity | undefined> {
    return this.client.findStudyIdentity(studyInstanceUid, options);
  }

  /** One QIDO-RS series search (study-search.ts): each study with its patient identity and series. */
  studiesWithSeries(ref: Pick<StudyRef, 'studyInstanceUid' | 'accessionNumber'>, options: LoadOptions = {}): Promise<FoundStudy[]> {
    return studiesWithSeries(this.client, ref, this.seriesModality, options);
  }

  async findSeries(ref: StudyRef, options: LoadOptions = {}): Promise<SeriesCandidate[]> {
    const server = this.client.server;
    if (!ref.studyInstanceUid && !ref.accessionNumber && !ref.patientId) {
      throw new DicomWebError('bad-input', `Say which study to read from DICOMweb server ${server}: a study UID, an accession number or a patient ID.`, { server });
    }
    if (!ref.patientId && (ref.studyInstanceUid || ref.accessionNumber)) {
      // A named study (or accession): one series search instead of a study search plus one per study.
      const found = await this.studiesWithSeries(ref, options);
      if (found.length === 0) throw this.notFound(ref);
      return found.flatMap((f) => f.series);
    }
    const query: StudyQuery = {
      studyInstanceUid: ref.studyInstanceUid,
      accessionNumber: ref.accessionNumber,
      patientId: ref.patientId,
    };
    // Only for a patient-wide search: a named study is returned even if its modality list is odd.
    if (!ref.studyInstanceUid && !ref.accessionNumber && this.seriesModality) query.modalitiesInStudy = this.seriesModality;
    const studies = await this.client.findStudies(query, options);
    if (studies.length === 0) throw this.notFound(ref);
    const out: SeriesCandidate[] = [];
    for (const study of studies) {
      const series = await this.client.describeSeries(study.studyInstanceUid, this.seriesModality ? { modality: this.seriesModality } : {}, options);
      for (const s of series) out.push(seriesCandidate(s, study));
    }
    return out;
  }

  private notFound(ref: StudyRef): DicomWebError {
    return new DicomWebError('not-found', `No study ${describeRef(ref)} was found on DICOMweb server ${this.client.server}; check the identifiers, or wait until the study has arrived.`, {
      server: this.client.server,
      studyInstanceUid: ref.studyInstanceUid,
    });
  }

  async loadSlices(series: SeriesCandidate, options: LoadOptions = {}): Promise<DicomSlice[]> {
    try {
      return await this.loadWith(series, this.transferSyntax, options);
    } catch (e) {
      if (e instanceof NeedUncompressed && this.transferSyntax !== EXPLICIT_VR_LITTLE_ENDIAN) {
        return this.loadWith(series, EXPLICIT_VR_LITTLE_ENDIAN, options);
      }
      throw e;
    }
  }

  /**
   * One series straight to a HU volume, converting each instance into the volume as it arrives and
   * dropping its bytes, so memory holds the volume (int16 HU for the usual integer rescale) plus a few instances instead of every decoded
   * slice plus the volume (the `loadSlices` + `assembleVolume` path). Slabs are written in arrival order,
   * then sorted in place once the headers give the geometry (same planVolume/storedToHu/finishVolume as
   * `assembleVolume`, so the voxels are identical). Falls back to loadSlices + assembleVolume when the
   * instance count is unknown or instances are fetched one by one.
   */
  async loadSeriesVolume(series: SeriesCandidate, options: LoadOptions & AssembleOptions = {}): Promise<LoadedVolume> {
    const assemble: AssembleOptions = { missingSlices: options.missingSlices, skippedSeries: options.skippedSeries, kind: options.kind ?? 'dicomweb' };
    if (this.retrieveMode === 'instances' || series.instanceCount === undefined || series.instanceCount < 1) {
      return assembleVolume(await this.loadSlices(series, options), this.description, assemble);
    }
    const run = (ts: string): Promise<LoadedVolume> => this.streamVolume(series, ts, options.signal, assemble);
    try {
      return await run(this.transferSyntax);
    } catch (e) {
      if (e instanceof NeedUncompressed && this.transferSyntax !== EXPLICIT_VR_LITTLE_ENDIAN) return run(EXPLICIT_VR_LITTLE_ENDIAN);
      throw e;
    }
  }

  private async streamVolume(series: SeriesCandidate, transferSyntax: string, signal: AbortSignal | undefined, assemble: AssembleOptions): Promise<LoadedVolume> {
    // Image planes: frames of multi-frame instances (Enhanced CT), else instances.
    const expected = series.frameCount ?? (series.instanceCount as number);
    let hu: HuVolumeBuilder | undefined;
    let plane = 0;
    let cols = 0;
    let rows = 0;
    let headers: DicomSliceHeader[] = [];
    let seen = new Set<string>();
    let instances = new Set<string>();
    const arrival = new Map<DicomSliceHeader, number>();
    let sizeMismatch = false;
    // Each instance's bytes are dead once converted: recycle them for the next part.
    const pool = new BufferPool();
    const place = (slices: DicomSlice[], body: Buffer): void => {
      try {
        for (const s of slices) placeSlice(s);
      } finally {
        pool.release(body);
      }
    };
    const placeSlice = (slice: DicomSlice): void => {
      const key = sliceKey(slice);
      if (seen.has(key)) return;
      seen.add(key);
      instances.add(slice.sopInstanceUid);
      const { pixels, ...header } = slice;
      const a = headers.length;
      headers.push(header);
      arrival.set(header, a);
      if (!hu) {
        cols = slice.columns;
        rows = slice.rows;
        plane = cols * rows;
        // Int16 HU for an integer rescale (the usual CT); promoted to Float32 if a later instance needs it.
        hu = new HuVolumeBuilder(plane * Math.max(expected, 1), hasIntegerHu(slice));
      }
      if (slice.columns !== cols || slice.rows !== rows || pixels.length < plane) {
        sizeMismatch = true; // planVolume names the mixed sizes below
        return;
      }
      // More planes than QIDO announced (still arriving): grow, rarely.
      if ((a + 1) * plane > hu.hu.length) hu.ensure(Math.ceil((a + 1) * 1.25) * plane);
      hu.put(slice, a * plane, plane);
    };
    await this.client.retrieveSeries(series.studyInstanceUid, series.seriesInstanceUid, {
      onStart: () => {
        headers = [];
        seen = new Set();
        instances = new Set();
        arrival.clear();
        sizeMismatch = false;
      },
      onPart: (part) => {
        const s = this.partToSlices(series, part, part.index, transferSyntax);
        if (s instanceof Promise) return s.then((x) => place(x, part.body));
        place(s, part.body);
      },
    }, { transferSyntax, signal, allocate: (n) => pool.alloc(n) });
    this.checkComplete(series, instances.size);
    const plan = planVolume(headers, this.description, assemble);
    if (sizeMismatch || !hu) {
      throw new DicomWebError('bad-input', `Series ${series.seriesInstanceUid} from DICOMweb server ${this.client.server} has instances of different sizes.`, {
        server: this.client.server, studyInstanceUid: series.studyInstanceUid, seriesInstanceUid: series.seriesInstanceUid,
      });
    }
    return finishVolume(plan, slabsOnGrid(plan, headers.length, arrival, hu.hu, plane));
  }

  /** `VolumeStreamingSource` (src/dicom/load-study.ts): `loadStudyVolume` takes the streamed path through this. */
  loadVolume(series: SeriesCandidate, options: LoadOptions & AssembleOptions = {}): Promise<LoadedVolume> {
    return this.loadSeriesVolume(series, options);
  }

  /** Several series with at most `concurrency` retrieves in flight; rejects if any one fails. */
  loadManySeries(series: readonly SeriesCandidate[], options: LoadOptions & { concurrency?: number } = {}): Promise<DicomSlice[][]> {
    return mapLimit(series, options.concurrency ?? 2, (s) => this.loadSlices(s, options));
  }

  private async loadWith(series: SeriesCandidate, transferSyntax: string, options: LoadOptions): Promise<DicomSlice[]> {
    const slices = this.retrieveMode === 'instances'
      ? await this.loadByInstance(series, transferSyntax, options)
      : await this.loadBySeries(series, transferSyntax, options);
    // A server that repeats an instance gives one slice, not a duplicate position (as the folder source).
    const seen = new Set<string>();
    const unique = slices.filter((s) => (seen.has(sliceKey(s)) ? false : (seen.add(sliceKey(s)), true)));
    this.checkComplete(series, new Set(unique.map((s) => s.sopInstanceUid)).size);
    return unique;
  }

  private async loadBySeries(series: SeriesCandidate, transferSyntax: string, options: LoadOptions): Promise<DicomSlice[]> {
    let slices: DicomSlice[] = [];
    await this.client.retrieveSeries(series.studyInstanceUid, series.seriesInstanceUid, {
      // A retried attempt starts over: nothing from a broken attempt survives.
      onStart: () => {
        slices = [];
      },
      onPart: (part) => {
        const s = this.partToSlices(series, part, part.index, transferSyntax);
        if (s instanceof Promise) return s.then((x) => void slices.push(...x));
        slices.push(...s);
      },
    }, { transferSyntax, signal: options.signal });
    return slices;
  }

  private async loadByInstance(series: SeriesCandidate, transferSyntax: string, options: LoadOptions): Promise<DicomSlice[]> {
    const instances: InstanceSummary[] = await this.client.findInstances(series.studyInstanceUid, series.seriesInstanceUid, {}, options);
    const perInstance = await mapLimit(instances, this.instanceConcurrency, async (inst, i) => {
      const part = await this.client.retrieveInstance(series.studyInstanceUid, series.seriesInstanceUid, inst.sopInstanceUid, { transferSyntax, signal: options.signal });
      return await this.partToSlices(series, part, i, transferSyntax);
    });
    return perInstance.flat();
  }

  /** Parses one part into its slices (one per frame); synchronous unless a codec must be loaded first. */
  private partToSlices(series: SeriesCandidate, part: MultipartPart, index: number, askedFor: string): DicomSlice[] | Promise<DicomSlice[]> {
    const server = this.client.server;
    const where = { server, studyInstanceUid: series.studyInstanceUid, seriesInstanceUid: series.seriesInstanceUid };
    const source = `instance ${index + 1} of series ${series.seriesInstanceUid} from DICOMweb server ${server}`;
    const type = part.contentType.mediaType;
    if (type !== '' && type !== 'application/dicom' && type !== 'application/octet-stream') {
      throw new DicomWebError('bad-input', `The ${source} is "${type}", not a DICOM instance; the server sent something other than images.`, where);
    }
    const wrap = (e: unknown): never => {
      if (e instanceof DicomWebError || e instanceof StopRequest || !isVbmdError(e)) throw e;
      // parse.ts names the source already; keep its sentence, add which server/series for callers.
      throw new DicomWebError(e.code, e.message, where, { cause: e });
    };
    const check = (slices: DicomSlice[]): DicomSlice[] =>
      slices.map((slice) => {
        if (slice.seriesInstanceUid === series.seriesInstanceUid) return slice;
        // A PACS that indexed a file without UIDs under UIDs of its own serves the file as stored: its
        // substitute UIDs stand for the ones the server gave it, which are the ones to report.
        if (slice.substitutedUids?.includes('series')) {
          const still = slice.substitutedUids.filter((k) => k === 'instance');
          return { ...slice, studyInstanceUid: series.studyInstanceUid, seriesInstanceUid: series.seriesInstanceUid, substitutedUids: still.length > 0 ? still : undefined };
        }
        throw new DicomWebError('remote', `The ${source} belongs to series ${slice.seriesInstanceUid}; the server mixed up series.`, where);
      });
    let ts: string;
    try {
      ts = peekTransferSyntax(part.body, source);
      if (transferSyntaxInfo(ts).decoder === 'none' && askedFor !== EXPLICIT_VR_LITTLE_ENDIAN) throw new NeedUncompressed(ts);
      if (this.ready.has(ts)) {
        const parsed = this.parseFrames(part.body, source);
        return parsed instanceof Promise ? parsed.then(check, wrap) : check(parsed);
      }
    } catch (e) {
      return wrap(e);
    }
    return prepareCodecFor(ts, source)
      .then(() => {
        this.ready.add(ts);
        return this.parseFrames(part.body, source);
      })
      .then(check, wrap);
  }

  private checkComplete(series: SeriesCandidate, received: number): void {
    const server = this.client.server;
    const where = { server, studyInstanceUid: series.studyInstanceUid, seriesInstanceUid: series.seriesInstanceUid };
    if (received === 0) {
      throw new DicomWebError('not-found', `DICOMweb server ${server} returned no instances for series ${series.seriesInstanceUid}; the series may have been deleted.`, where);
    }
    if (series.instanceCount !== undefined && received < series.instanceCount) {
      throw new DicomWebError('remote', `DICOMweb server ${server} returned ${received} of the ${series.instanceCount} instances of series ${series.seriesInstanceUid}; the series may still be arriving: try again later.`, where);
    }
  }
}

function describeRef(ref: StudyRef): string {
  const parts: string[] = [];
  if (ref.studyInstanceUid) parts.push(`with UID ${ref.studyInstanceUid}`);
  if (ref.accessionNumber) parts.push(`with accession number ${ref.accessionNumber}`);
  if (ref.patientId) parts.push(`for patient ID ${ref.patientId}`);
  return parts.join(' and ');
}

/**
 * The streamed HU slabs, stored in arrival order (`arrival` of each header), moved to their grid places:
 * in place when the grid has no gaps, else copied into a longer array whose gaps finishVolume fills.
 */
function slabsOnGrid(plan: VolumePlan, count: number, arrival: ReadonlyMap<DicomSliceHeader, number>, vol: HuArray, plane: number): HuArray {
  const target = plan.order.map(() => 0);
  plan.order.forEach((h, k) => {
    target[arrival.get(h) as number] = plan.gridIndex[k];
  });
  const total = plan.dims[0] * plan.dims[1] * plan.dims[2];
  let out: HuArray;
  if (plan.dims[2] === count) {
    permuteSlabsInPlace(vol, plane, target);
    // Exact-size buffer (only after growing).
    out = vol.length === total ? vol : vol.slice(0, total);
  } else {
    // Gaps to interpolate: the grid is longer than the instances; copy slabs to their grid places.
    out = vol instanceof Int16Array ? new Int16Array(total) : new Float32Array(total);
    for (let a = 0; a < count; a++) out.set(vol.subarray(a * plane, (a + 1) * plane), target[a] * plane);
  }
  return out;
}
