import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join, relative } from 'node:path';
import { VbmdError, isVbmdError } from '../util/errors.js';
import { sliceKey, type DicomSlice } from './slice.js';
import type { DicomPatientIdentity } from './patient-identity.js';
import type { DicomSource, LoadOptions, StudyRef } from './source.js';
import type { SeriesChoiceCandidate } from './series-choice.js';
import {
  parseDicomFramesParallel,
  parseDicomHeaders,
  parseDicomSlice,
  parseDicomSliceParallel,
  prepareCodecFor,
  sliceFromScannedHeader,
  type DicomSliceHeader,
  type PixelDataLocation,
} from './parse.js';
import { isEncapsulated, transferSyntaxInfo } from './codecs/transfer-syntax.js';
import { splitByAcquisition, uniquePlanes } from './plane-grouping.js';
import { HuVolumeBuilder, finishVolume, hasIntegerHu, placeSlice, planVolume, type AssembleOptions } from './assemble-volume.js';
import type { LoadedVolume } from '../imaging/volume.js';
import { PagePrefaulter } from '../imaging/page-prefault.js';

/** Bytes read per file for the header scan; CT headers are 1-10 KB (longer ones are re-read whole). */
const HEADER_PROBE_BYTES = 16 * 1024;
/** Longer reads tried when a header does not fit the first probe (the last bounds the header scan). */
const LONG_HEADER_PROBES = [1024 * 1024, 16 * 1024 * 1024, 64 * 1024 * 1024];
/** Files scanned between yields to the event loop. */
const SCAN_BATCH = 64;
/** Files read and decoded between yields to the event loop (~1-2 ms each at 512x512). */
const LOAD_BATCH = 8;
/** Files read at once: enough to keep the disk and the parser busy on 2 cores without exhausting fds. */
const READ_CONCURRENCY = 16;

export interface FolderScan {
  /** Regular files found under the root (any nesting). */
  fileCount: number;
  /** Files that are not DICOM images (no DICM marker, DICOMDIR, unreadable header): counted, then ignored. */
  nonDicomCount: number;
  /** A few of those, relative to the root, for messages. */
  nonDicomExamples: string[];
  /** Files with a DICOM marker whose header cannot be read (truncated, corrupt), with the reason. */
  unreadable: { file: string; message: string }[];
  series: FolderSeries[];
}

export interface FolderSeries extends SeriesChoiceCandidate {
  files: string[];
}

/**
 * A folder (any nesting, several studies and series) or a single file as a DicomSource. `findSeries`
 * scans headers only (first 16 KB of each file, stopping at PixelData) and caches the result, so series
 * choice is cheap; `loadVolume` streams one series into a volume (what loadStudyVolume uses);
 * `loadSlices` returns the decoded slices of one series for callers that want them.
 */
export class FolderDicomSource implements DicomSource {
  readonly description: string;
  private scanned: Promise<FolderScan> | undefined;
  /** Scanned headers per series (header.source is the file path). */
  private readonly headersBySeries = new Map<string, DicomSliceHeader[]>();
  /** Where each scanned single-frame file's pixel data sits, and the file size then (to notice a changed file). */
  private readonly pixelAt = new Map<string, PixelDataLocation & { fileSize: number }>();

  constructor(readonly root: string) {
    this.description = `folder ${root}`;
  }

  /** Header scan of every file (once; later calls reuse it). */
  scan(options: LoadOptions = {}): Promise<FolderScan> {
    this.scanned ??= this.doScan(options);
    return this.scanned;
  }

  async studyIdentity(studyInstanceUid: string, options: LoadOptions = {}): Promise<DicomPatientIdentity | undefined> {
    await this.scan(options);
    for (const headers of this.headersBySeries.values()) {
      const h = headers.find((x) => x.studyInstanceUid === studyInstanceUid);
      if (h) return h.identity ?? {};
    }
    return undefined;
  }

  async findSeries(ref: StudyRef, options: LoadOptions = {}): Promise<FolderSeries[]> {
    const scan = await this.scan(options);
    return scan.series.filter(
      (s) =>
        (!ref.studyInstanceUid || s.studyInstanceUid === ref.studyInstanceUid) &&
        (!ref.accessionNumber || s.accessionNumber === ref.accessionNumber) &&
        (!ref.patientId || s.patientId === ref.patientId),
    );
  }

  async loadSlices(series: SeriesChoiceCandidate, options: LoadOptions = {}): Promise<DicomSlice[]> {
    const scan = await this.scan(options);
    const found = scan.series.find((s) => s.seriesInstanceUid === series.seriesInstanceUid);
    if (!found) throw new VbmdError('not-found', `Series ${series.seriesInstanceUid} is not in ${this.description}.`);
    const perFile = await mapLimit(found.files, READ_CONCURRENCY, async (file) => {
      options.signal?.throwIfAborted();
      return decodeFile(file, () => readBytes(file), parseDicomFramesParallel);
    });
    // The same instance copied twice into a folder is one slice, not a duplicate position. A substituted
    // series UID split by acquisition (splitByAcquisition) is the scan's, not what the file alone gives.
    const seen = new Set<string>();
    const out: DicomSlice[] = [];
    for (const s of perFile.flat()) {
      const key = sliceKey(s);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(s.substitutedUids?.includes('series') ? { ...s, seriesInstanceUid: found.seriesInstanceUid } : s);
    }
    return out;
  }

  /**
   * Streams one series straight into a volume: the geometry is planned from the scanned headers, then
   * each file is read, decoded and converted into its slot, and its bytes dropped. Faster and ~half the
   * memory of loadSlices + assembleVolume, with the same checks and errors.
   */
  async loadVolume(series: SeriesChoiceCandidate, options: LoadOptions & AssembleOptions = {}): Promise<LoadedVolume> {
    await this.scan(options);
    const all = this.headersBySeries.get(series.seriesInstanceUid);
    if (!all) throw new VbmdError('not-found', `Series ${series.seriesInstanceUid} is not in ${this.description}.`);
    const headers = uniquePlanes(all);
    const plan = planVolume(headers, this.description, options);
    for (const ts of new Set(headers.map((h) => h.transferSyntaxUid))) {
      await prepareCodecFor(ts, headers.find((h) => h.transferSyntaxUid === ts)!.source);
    }
    // Int16 HU when every header has an integer rescale (promoted to Float32 if a slice does not fit).
    const hu = new HuVolumeBuilder(plan.dims[0] * plan.dims[1] * plan.dims[2], plan.order.every(hasIntegerHu));
    const plane = plan.dims[0] * plan.dims[1];
    const target = hu.hu;
    const bytesPerVoxel = target.BYTES_PER_ELEMENT;
    const prefault = new PagePrefaulter(new Uint8Array(target.buffer, target.byteOffset, target.byteLength));
    const place = async (slice: DicomSlice, k: number): Promise<void> => {
      // After a promotion the prefaulter still works on the old array, which is no longer written.
      if (hu.hu === target) {
        const at = plan.gridIndex[k] * plane * bytesPerVoxel;
        const wait = prefault.claim(at, at + plane * bytesPerVoxel);
        if (wait) await wait;
      }
      placeSlice(plan, slice, k, hu);
    };
    try {
      if (headers.some((h) => h.frameNumber !== undefined)) await decodeByFile(plan.order, place, options);
      else if (headers.some((h) => isEncapsulated(transferSyntaxInfo(h.transferSyntaxUid)))) await decodeCompressed(plan.order, place, options);
      else await decodeNative(plan.order, place, options, (h) => this.pixelAt.get(h.source));
    } finally {
      await prefault.stop();
    }
    return finishVolume(plan, hu.hu);
  }

  private async doScan(options: LoadOptions): Promise<FolderScan> {
    const files = await listFiles(this.root);
    const headers: DicomSliceHeader[] = [];
    const nonDicom: string[] = [];
    const unreadable: { file: string; message: string }[] = [];
    const probe = Buffer.allocUnsafeSlow(HEADER_PROBE_BYTES);
    for (let n = 0; n < files.length; n++) {
      if (n % SCAN_BATCH === SCAN_BATCH - 1) {
        await new Promise((r) => setImmediate(r));
        options.signal?.throwIfAborted();
      }
      const file = files[n];
      const r = readHeaderSync(file, probe);
      if ('headers' in r) {
        headers.push(...r.headers);
        if (r.pixelData && r.headers.length === 1) this.pixelAt.set(file, { ...r.pixelData, fileSize: r.fileSize });
      } else if (r.dicom) unreadable.push({ file, message: r.message });
      else nonDicom.push(file);
    }
    const groups = new Map<string, DicomSliceHeader[]>();
    for (const h of headers) {
      const g = groups.get(h.seriesInstanceUid);
      if (g) g.push(h);
      else groups.set(h.seriesInstanceUid, [h]);
    }
    const series: FolderSeries[] = [];
    for (const hs of [...groups.values()].flatMap(splitByAcquisition)) {
      const uid = hs[0].seriesInstanceUid;
      this.headersBySeries.set(uid, hs);
      const f = hs[0];
      const uniqueSop = new Set(hs.map((h) => h.sopInstanceUid));
      const planes = new Set(hs.map(sliceKey)).size;
      series.push({
        studyInstanceUid: f.studyInstanceUid,
        seriesInstanceUid: uid,
        modality: f.modality,
        seriesDescription: f.seriesDescription,
        seriesNumber: f.seriesNumber,
        imageType: f.imageType,
        sliceThicknessMm: f.sliceThicknessMm,
        instanceCount: uniqueSop.size,
        ...(planes !== uniqueSop.size ? { frameCount: planes } : {}),
        patientId: f.patientId,
        accessionNumber: f.accessionNumber,
        orientation: orientationOf(f),
        sopClassUid: f.sopClassUid,
        extentMm: extentOf(hs),
        files: [...new Set(hs.map((h) => h.source))].sort(),
      });
    }
    series.sort((a, b) => (a.seriesNumber ?? 0) - (b.seriesNumber ?? 0) || a.seriesInstanceUid.localeCompare(b.seriesInstanceUid));
    nonDicom.sort();
    return {
      fileCount: files.length,
      nonDicomCount: nonDicom.length,
      nonDicomExamples: nonDicom.slice(0, 3).map((f) => relative(this.root, f) || f),
      unreadable: unreadable.sort((a, b) => a.file.localeCompare(b.file)),
      series,
    };
  }
}

/** Every regular file under `root` (or `root` itself when it is a file), skipping dot-files. */
export async function listFiles(root: string): Promise<string[]> {
  let st;
  try {
    st = await stat(root);
  } catch {
    throw new VbmdError('not-found', `${root} does not exist.`);
  }
  if (st.isFile()) return [root];
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(root, { recursive: true, withFileTypes: true });
  } catch (e) {
    throw new VbmdError('bad-input', `Cannot read folder ${root}: ${(e as Error).message}.`);
  }
  for (const e of entries) {
    if (e.name.startsWith('.') || !(e.isFile() || e.isSymbolicLink())) continue;
    // Node 20: parentPath (20.12+) or path; both are the entry's directory.
    const dir = (e as { parentPath?: string }).parentPath ?? (e as { path?: string }).path ?? root;
    const file = join(dir, e.name);
    // Exported datasets often link files into place: follow links to regular files, skip the rest.
    if (e.isSymbolicLink() && !(await stat(file).then((s) => s.isFile(), () => false))) continue;
    out.push(file);
  }
  return out.sort();
}

type Place = (slice: DicomSlice, k: number) => Promise<void>;

/**
 * Native pixel data: one reusable read buffer (no per-file allocation, page faults or garbage: the parsed
 * slice's pixels are views into it, consumed by `place` before the next read). Reads are synchronous, like
 * the header scan: from the page cache that is a memcpy, measured at a third of the CPU of async reads
 * (300 CT files: ~18 ms vs ~50 ms); the event loop gets a turn every few files.
 */
async function decodeNative(
  order: DicomSliceHeader[],
  place: Place,
  options: LoadOptions,
  scanned: (h: DicomSliceHeader) => (PixelDataLocation & { fileSize: number }) | undefined,
): Promise<void> {
  let buffer: Buffer = Buffer.allocUnsafeSlow(0);
  for (let k = 0; k < order.length; k++) {
    if (k % LOAD_BATCH === LOAD_BATCH - 1) {
      await new Promise((r) => setImmediate(r));
      options.signal?.throwIfAborted();
    }
    const h = order[k];
    let bytes: Uint8Array;
    ({ bytes, buffer } = readIntoSync(h.source, buffer));
    // The header was parsed moments ago by the scan: reuse it when the file is unchanged (same size,
    // PixelData tag where it was), saving a second full parse per file.
    const at = scanned(h);
    const quick = at && at.fileSize === bytes.length ? sliceFromScannedHeader(h, bytes, at) : undefined;
    await place(quick ?? (await decodeFile(h.source, () => bytes, parseDicomSlice)), k);
  }
}

/** Compressed: decoding dominates, so files are read asynchronously and decoded on the worker pool, several in flight per core. */
async function decodeCompressed(order: DicomSliceHeader[], place: Place, options: LoadOptions): Promise<void> {
  await mapLimit(order, Math.max(4, 2 * availableParallelism()), async (h, k) => {
    options.signal?.throwIfAborted();
    await place(await decodeFile(h.source, () => readBytes(h.source), parseDicomSliceParallel), k);
  });
}

/**
 * Multi-frame files (Enhanced CT): each file is read once and all its frames decoded (compressed ones on
 * the worker pool), then placed; files one after another, since one can hold a whole series.
 */
async function decodeByFile(order: DicomSliceHeader[], place: Place, options: LoadOptions): Promise<void> {
  const byFile = new Map<string, number[]>();
  order.forEach((h, k) => {
    const ks = byFile.get(h.source);
    if (ks) ks.push(k);
    else byFile.set(h.source, [k]);
  });
  for (const [file, ks] of byFile) {
    options.signal?.throwIfAborted();
    const slices = await decodeFile(file, () => readBytes(file), parseDicomFramesParallel);
    const byKey = new Map(slices.map((s) => [sliceKey(s), s]));
    for (const k of ks) {
      const s = byKey.get(sliceKey(order[k]));
      if (!s) throw new VbmdError('bad-input', `${file} changed while it was being read (frame ${order[k].frameNumber ?? 1} of instance ${order[k].sopInstanceUid} is gone); load it again.`);
      await place(s, k);
    }
  }
}

/** Reads and parses one file; anything but a VbmdError becomes one that names the file. */
async function decodeFile<T>(
  file: string,
  read: () => Uint8Array | Promise<Uint8Array>,
  parse: (bytes: Uint8Array, source: string) => T | Promise<T>,
): Promise<T> {
  const bytes = await read();
  try {
    return await parse(bytes, file);
  } catch (e) {
    if (isVbmdError(e)) throw e;
    throw new VbmdError('bad-input', `${file} could not be decoded: ${(e as Error).message}.`, {}, { cause: e });
  }
}

type HeaderResult = { headers: DicomSliceHeader[]; pixelData?: PixelDataLocation; fileSize: number } | { dicom: boolean; message: string };

/**
 * Header of a DICOM image file; else whether it looked like DICOM (DICM marker) and why it failed.
 * Synchronous on purpose: a small read from the page cache costs microseconds, while each async fs call
 * hops through the thread pool (measured: 300 CT headers in ~25 ms sync vs ~120 ms async). The caller
 * yields to the event loop between batches.
 */
function readHeaderSync(file: string, probe: Buffer): HeaderResult {
  let head: Uint8Array;
  let size: number;
  try {
    const fd = openSync(file, 'r');
    try {
      size = fstatSync(fd).size;
      const n = readSync(fd, probe, 0, Math.min(probe.length, size), 0);
      head = probe.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    return { dicom: false, message: (e as Error).message };
  }
  // A DICOMDIR (PS3.10 media directory) is DICOM but not an image: ignore it like any non-image file.
  if (/^dicomdir$/i.test(basename(file))) return { dicom: false, message: 'DICOMDIR' };
  const looksDicom = head.length >= 132 && Buffer.from(head.subarray(128, 132)).toString('latin1') === 'DICM';
  const found: { pixelData?: PixelDataLocation } = {};
  // Longer headers (Enhanced CT functional groups, big private blocks) are read from longer prefixes, not
  // the whole file: a multi-frame file's pixel data can be hundreds of MB, a raw-data object gigabytes.
  for (const prefix of [0, ...LONG_HEADER_PROBES]) {
    try {
      const bytes = prefix === 0 ? head : readPrefixSync(file, Math.min(prefix, size));
      return { headers: parseDicomHeaders(bytes, file, bytes.length < size, found), pixelData: found.pixelData, fileSize: size };
    } catch (e) {
      if (!(isVbmdError(e) && e.details.needMoreBytes === true)) return { dicom: looksDicom, message: (e as Error).message };
      if (prefix >= size) break;
    }
  }
  return { dicom: looksDicom, message: `${file}: no pixel data within its first ${LONG_HEADER_PROBES.at(-1)! / 2 ** 20} MiB; not an image vbmd reads.` };
}

function readPrefixSync(file: string, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    let off = 0;
    while (off < length) {
      const n = readSync(fd, buf, off, length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** Reads a whole file into `buffer` (replaced by a larger one when needed); returns a view and the buffer. */
function readIntoSync(file: string, buffer: Buffer): { bytes: Uint8Array; buffer: Buffer } {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      // Grow with headroom so a series of similar files reallocates once.
      const buf = buffer.length >= size ? buffer : Buffer.allocUnsafeSlow(Math.ceil(size * 1.25));
      let off = 0;
      while (off < size) {
        const n = readSync(fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      return { bytes: buf.subarray(0, off), buffer: buf };
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new VbmdError('bad-input', `Cannot read ${file}: ${(e as Error).message}.`);
  }
}

async function readBytes(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new VbmdError('bad-input', `Cannot read ${file}: ${(e as Error).message}.`);
  }
}

function orientationOf(h: DicomSliceHeader): SeriesChoiceCandidate['orientation'] {
  const o = h.imageOrientation;
  if (!o) return undefined;
  const n = [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]].map(Math.abs);
  const len = Math.hypot(n[0], n[1], n[2]) || 1;
  // Within ~30 degrees of a main axis (cos 30 = 0.866) counts as that plane; tilted axial stacks stay axial.
  if (n[2] / len > 0.866) return 'axial';
  if (n[1] / len > 0.866) return 'coronal';
  if (n[0] / len > 0.866) return 'sagittal';
  return 'oblique';
}

function extentOf(hs: DicomSliceHeader[]): number | undefined {
  const o = hs[0].imageOrientation;
  if (!o || hs.some((h) => !h.imagePositionMm)) return undefined;
  const n = [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]];
  let lo = Infinity;
  let hi = -Infinity;
  for (const h of hs) {
    const p = h.imagePositionMm!;
    const z = p[0] * n[0] + p[1] * n[1] + p[2] * n[2];
    lo = Math.min(lo, z);
    hi = Math.max(hi, z);
  }
  return hi - lo + (hs[0].sliceThicknessMm ?? 0);
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order; first rejection wins. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number, worker: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (w: number): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i, w);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, (_, w) => worker(w)));
  return out;
}

