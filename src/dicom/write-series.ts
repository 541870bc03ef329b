import { mkdir, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import dcmjs, { type DenaturalizedDataset } from 'dcmjs';
import { VbmdError } from '../util/errors.js';
import type { HuArray, Vec3, Volume } from '../imaging/volume.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Our implementation class UID (2.25 = UUID-derived root, PS3.5 B.2), fixed so files say who wrote them. */
export const IMPLEMENTATION_CLASS_UID = '2.25.181930420575307166432913226906052170211';

/** What a written CT series says about itself beyond the voxels. Unset optional fields are omitted. */
export interface CtSeriesMeta {
  patientId: string;
  /** PHI in real data; synthetic here. DICOM PN, e.g. "PHANTOM^ONE". */
  patientName?: string;
  /** YYYYMMDD */
  patientBirthDate?: string;
  patientSex?: 'M' | 'F' | 'O';
  /** Generated (2.25.<uuid>) when absent. */
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  frameOfReferenceUid?: string;
  accessionNumber?: string;
  studyId?: string;
  studyDescription?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  /** ISO 8601 local date-time ("2024-03-05T10:20:30"); written to StudyDate/Time, AcquisitionDateTime, ... */
  acquisitionDateTime?: string;
  manufacturer?: string;
  manufacturerModelName?: string;
  institutionName?: string;
  kvp?: number;
  /** Nominal reconstructed thickness; defaults to the volume's slice spacing. */
  sliceThicknessMm?: number;
  /** (0018,0010) Contrast/Bolus Agent; omitted when unset. */
  contrastAgent?: string;
  convolutionKernel?: string;
  bodyPartExamined?: string;
  /** Default -1024 (stored = round((HU - intercept) / slope)). */
  rescaleIntercept?: number;
  /** Default 1. */
  rescaleSlope?: number;
  /** Default ["ORIGINAL","PRIMARY","AXIAL"]. */
  imageType?: string[];
  /** Default "CT" (tests write "MR" to check series choice). */
  modality?: string;
  /** Default CT Image Storage. */
  sopClassUid?: string;
  /** (0018,1120) Gantry/Detector Tilt in degrees; omitted when unset. */
  gantryTiltDeg?: number;
  /** (0028,0120) stored value that marks padding pixels; omitted when unset. */
  pixelPaddingValue?: number;
  /** File names are `${fileNamePrefix}${instance:0000}.dcm`; default "CT". */
  fileNamePrefix?: string;
  /** First InstanceNumber; default 1. */
  firstInstanceNumber?: number;
  /** Extra attributes (dcmjs naturalized keywords, e.g. { AcquisitionNumber: 2 }) on every slice. */
  extraAttributes?: Record<string, unknown>;
  /** Per-slice overrides (dcmjs naturalized keywords), applied last: for test data with broken geometry. */
  sliceAttributes?: (sliceIndex: number) => Record<string, unknown>;
}

/** A new globally unique DICOM UID under the UUID-derived root 2.25 (PS3.5 B.2). */
export function newDicomUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

/**
 * Writes `volume` as a CT Image Storage series, one Part-10 file per slice (explicit VR little endian,
 * signed 16-bit stored values), into `dir` (created if needed). Returns the file paths in slice order.
 *
 * Speed: dcmjs only serializes the small per-slice header; the PixelData element (always the last
 * attribute of a CT image) is appended as raw bytes, so a 512x512x300 series costs ~1 ms per slice.
 */
export async function writeCtSeries(dir: string, volume: Volume, meta: CtSeriesMeta): Promise<string[]> {
  const [cols, rows, slices] = volume.dims;
  if (!(cols > 0 && rows > 0 && slices > 0) || volume.hu.length !== cols * rows * slices) {
    throw new VbmdError('bad-input', `Cannot write a CT series to ${dir}: volume dims ${volume.dims.join('x')} do not match its ${volume.hu.length} voxels.`);
  }
  await mkdir(dir, { recursive: true });
  const slope = meta.rescaleSlope ?? 1;
  const intercept = meta.rescaleIntercept ?? -1024;
  if (!(slope !== 0 && Number.isFinite(slope) && Number.isFinite(intercept))) {
    throw new VbmdError('bad-input', `Cannot write a CT series: rescale slope ${slope} / intercept ${intercept} are not usable.`);
  }
  const sopClassUid = meta.sopClassUid ?? CT_IMAGE_STORAGE;
  const sharedDicom = DicomMetaDictionary.denaturalizeDataset(seriesAttributes(volume, meta, sopClassUid, slope, intercept));
  return writeSlices(dir, volume, meta, { sharedDicom, sopClassUid, slope, intercept });
}

/** The attributes every slice of the series shares (dcmjs naturalized keywords), UIDs generated where unset. */
function seriesAttributes(volume: Volume, meta: CtSeriesMeta, sopClassUid: string, slope: number, intercept: number): Record<string, unknown> {
  const [cols, rows] = volume.dims;
  const studyUid = meta.studyInstanceUid ?? newDicomUid();
  const seriesUid = meta.seriesInstanceUid ?? newDicomUid();
  const forUid = meta.frameOfReferenceUid ?? newDicomUid();
  const dt = splitIsoDateTime(meta.acquisitionDateTime);
  const [di, dj] = volume.direction;
  const [sx, sy, sz] = volume.spacingMm;

  const shared: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: meta.imageType ?? ['ORIGINAL', 'PRIMARY', 'AXIAL'],
    SOPClassUID: sopClassUid,
    Modality: meta.modality ?? 'CT',
    PatientID: meta.patientId,
    PatientName: meta.patientName ?? '',
    PatientBirthDate: meta.patientBirthDate ?? '',
    PatientSex: meta.patientSex ?? '',
    StudyInstanceUID: studyUid,
    SeriesInstanceUID: seriesUid,
    FrameOfReferenceUID: forUid,
    StudyID: meta.studyId ?? '1',
    AccessionNumber: meta.accessionNumber ?? '',
    ReferringPhysicianName: '',
    SeriesNumber: String(meta.seriesNumber ?? 1),
    PositionReferenceIndicator: '',
    ImageOrientationPatient: [...di, ...dj].map(ds),
    PixelSpacing: [ds(sy), ds(sx)],
    SliceThickness: ds(meta.sliceThicknessMm ?? sz),
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: cols,
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 1,
    RescaleIntercept: ds(intercept),
    RescaleSlope: ds(slope),
    RescaleType: 'HU',
    WindowCenter: '40',
    WindowWidth: '400',
  };
  Object.assign(shared, dateAttributes(dt));
  const optional: [string, unknown][] = [
    ['Manufacturer', meta.manufacturer],
    ['ManufacturerModelName', meta.manufacturerModelName],
    ['InstitutionName', meta.institutionName],
    ['StudyDescription', meta.studyDescription],
    ['SeriesDescription', meta.seriesDescription],
    ['KVP', meta.kvp === undefined ? undefined : ds(meta.kvp)],
    ['ContrastBolusAgent', meta.contrastAgent],
    ['ConvolutionKernel', meta.convolutionKernel],
    ['BodyPartExamined', meta.bodyPartExamined],
    ['GantryDetectorTilt', meta.gantryTiltDeg === undefined ? undefined : ds(meta.gantryTiltDeg)],
    ['PixelPaddingValue', meta.pixelPaddingValue],
  ];
  for (const [k, v] of optional) if (v !== undefined) shared[k] = v;
  // Pixel Padding Value is US or SS by Pixel Representation (PS3.3 C.7.5.1.1.2); our pixels are signed.
  if (meta.pixelPaddingValue !== undefined) shared._vrMap = { PixelPaddingValue: 'SS' };
  Object.assign(shared, meta.extraAttributes ?? {});
  return shared;
}

/** Study, series, acquisition and content date/time from the acquisition date-time; empty study date/time without one. */
function dateAttributes(dt: { date: string; time: string } | undefined): Record<string, string> {
  if (!dt) return { StudyDate: '', StudyTime: '' };
  return {
    StudyDate: dt.date,
    StudyTime: dt.time,
    SeriesDate: dt.date,
    SeriesTime: dt.time,
    AcquisitionDate: dt.date,
    AcquisitionTime: dt.time,
    AcquisitionDateTime: dt.date + dt.time,
    ContentDate: dt.date,
    ContentTime: dt.time,
  };
}

/**
 * One Part-10 file per slice: the shared header plus the slice's position and UID, PixelData appended as
 * raw bytes. Returns the file paths in slice order.
 */
async function writeSlices(
  dir: string,
  volume: Volume,
  meta: CtSeriesMeta,
  series: { sharedDicom: DenaturalizedDataset; sopClassUid: string; slope: number; intercept: number },
): Promise<string[]> {
  const { sharedDicom, sopClassUid, slope, intercept } = series;
  const [cols, rows, slices] = volume.dims;
  const dk = volume.direction[2];
  const sz = volume.spacingMm[2];
  const prefix = meta.fileNamePrefix ?? 'CT';
  const first = meta.firstInstanceNumber ?? 1;
  const plane = cols * rows;
  const paths: string[] = [];
  const pending: Promise<void>[] = [];
  // Bounded parallel writes: the encoder runs while earlier files are being flushed.
  const MAX_IN_FLIGHT = 8;
  const ring: Buffer[] = new Array<Buffer>(MAX_IN_FLIGHT + 1);
  for (let k = 0; k < slices; k++) {
    const instance = first + k;
    const sopUid = newDicomUid();
    const pos: Vec3 = [0, 0, 0];
    for (let a = 0; a < 3; a++) pos[a] = volume.originMm[a] + k * sz * dk[a];
    const perSlice: Record<string, unknown> = {
      SOPInstanceUID: sopUid,
      InstanceNumber: String(instance),
      ImagePositionPatient: pos.map(ds),
      SliceLocation: ds(pos[0] * dk[0] + pos[1] * dk[1] + pos[2] * dk[2]),
      ...(meta.sliceAttributes?.(k) ?? {}),
    };
    // dcmjs writes tags in sorted order whatever the key order, so the shared part is converted once.
    const dataset = { ...sharedDicom, ...DicomMetaDictionary.denaturalizeDataset(perSlice) };
    const header = encodeHeader(dataset, String(perSlice.SOPClassUID ?? sopClassUid), String(perSlice.SOPInstanceUID));
    // One buffer per file in flight, reused round-robin: no per-file allocation, page faults or concat.
    const total = header.length + 12 + plane * 2;
    let out = ring[k % ring.length];
    if (!out || out.length < total) out = ring[k % ring.length] = Buffer.allocUnsafeSlow(total);
    header.copy(out, 0);
    writePixelDataElementHeader(out, header.length, plane * 2);
    encodePixels(volume.hu, k * plane, plane, slope, intercept, out, header.length + 12);
    const path = join(dir, `${prefix}${String(instance).padStart(4, '0')}.dcm`);
    paths.push(path);
    pending.push(writeFile(path, out.subarray(0, total)));
    if (pending.length >= MAX_IN_FLIGHT) await pending.shift();
  }
  await Promise.all(pending);
  return paths;
}

/** Part-10 preamble + file meta + dataset (without PixelData), serialized by dcmjs. */
export function encodeHeader(dataset: DenaturalizedDataset, sopClassUid: string, sopInstanceUid: string): Buffer {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: 'VBMD_0_1',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dataset;
  return Buffer.from(dict.write());
}

/** (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved bytes, 32-bit length (PS3.5 7.1.2). */
export function writePixelDataElementHeader(b: Buffer, at: number, byteLength: number): void {
  b.writeUInt16LE(0x7fe0, at);
  b.writeUInt16LE(0x0010, at + 2);
  b.write('OW', at + 4, 'latin1');
  b.writeUInt16LE(0, at + 6);
  b.writeUInt32LE(byteLength, at + 8);
}

/** stored = round((HU - intercept) / slope), clamped to int16, little endian, into `out` at byte `at`. */
function encodePixels(hu: HuArray, start: number, count: number, slope: number, intercept: number, out: Buffer, at: number): void {
  const inv = 1 / slope;
  // Int16Array needs 2-byte alignment; the header length is even (DICOM elements have even lengths).
  const aligned = (out.byteOffset + at) % 2 === 0;
  const view = aligned ? new Int16Array(out.buffer, out.byteOffset + at, count) : new Int16Array(count);
  for (let n = 0; n < count; n++) {
    const v = Math.round((hu[start + n] - intercept) * inv);
    view[n] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  // Int16Array uses the platform's byte order; every platform Node runs on is little endian.
  if (!aligned) out.set(new Uint8Array(view.buffer), at);
}

/** A DICOM Decimal String (<= 16 characters, PS3.5 6.2). */
export function ds(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`not a finite number: ${x}`);
  const v = Math.abs(x) < 1e-10 ? 0 : x;
  let s = String(v);
  for (let p = 12; s.length > 16 && p > 1; p--) s = String(Number(v.toPrecision(p)));
  return s;
}

function splitIsoDateTime(iso: string | undefined): { date: string; time: string } | undefined {
  if (!iso) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?/.exec(iso);
  if (!m) throw new VbmdError('bad-input', `acquisitionDateTime "${iso}" is not an ISO 8601 date-time.`);
  const time = `${m[4] ?? '00'}${m[5] ?? '00'}${m[6] ?? '00'}${m[7] ? `.${m[7]}` : ''}`;
  return { date: `${m[1]}${m[2]}${m[3]}`, time };
}
