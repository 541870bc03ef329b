import { open, readFile } from 'node:fs/promises';
import dcmjs from 'dcmjs';
import { z } from 'zod';
import type { Vec3, Volume } from '../imaging/volume.js';
import { parseDicomHeader } from '../dicom/parse.js';
import { dicomJsonArraySchema, str, strings, type DicomJsonDataset } from '../dicom/dicomweb/dicom-json.js';
import type { DicomWebClient } from '../dicom/dicomweb/client.js';
import { readBody } from '../dicom/dicomweb/http.js';
import { VbmdError, isVbmdError } from '../util/errors.js';

/**
 * What the derived objects must repeat or reference of the analysed CT series: the Patient and General Study
 * attributes (the SR, SEG and key image join the same study, PS3.3 C.7.1.1 / C.7.2.1, so a PACS files them
 * with it), the Frame of Reference, and each source instance with its position (SEG frames and SR image
 * references point at the very slices the ROI lies on). Read from the source itself (WADO-RS metadata or the
 * files): never typed in, never guessed.
 */
export interface SourceInstance {
  sopInstanceUid: string;
  sopClassUid: string;
  positionMm: Vec3;
}

/** dcmjs naturalized keywords, strings only (Type 2 attributes present, possibly empty). */
export const patientStudySchema = z.object({
  PatientName: z.string(),
  PatientID: z.string(),
  IssuerOfPatientID: z.string().optional(),
  PatientBirthDate: z.string(),
  PatientSex: z.string(),
  StudyInstanceUID: z.string().regex(/^[0-9]+(\.[0-9]+)*$/).max(64),
  StudyDate: z.string(),
  StudyTime: z.string(),
  ReferringPhysicianName: z.string(),
  StudyID: z.string(),
  AccessionNumber: z.string(),
  StudyDescription: z.string().optional(),
});
export type PatientStudy = z.infer<typeof patientStudySchema>;

export interface SourceSeries {
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  patientStudy: PatientStudy;
  instances: SourceInstance[];
}

const T = {
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  StudyInstanceUID: '0020000D',
  StudyDate: '00080020',
  StudyTime: '00080030',
  ReferringPhysicianName: '00080090',
  StudyID: '00200010',
  AccessionNumber: '00080050',
  StudyDescription: '00081030',
  SeriesInstanceUID: '0020000E',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  FrameOfReferenceUID: '00200052',
  ImagePositionPatient: '00200032',
} as const;

function invalid(where: string, what: string): VbmdError {
  return new VbmdError('bad-input', `The source series in ${where} cannot be referenced by DICOM results: ${what}.`);
}

function positionOf(values: readonly unknown[], where: string, sop: string): Vec3 {
  const p = values.map((v) => (typeof v === 'number' ? v : Number(v)));
  if (p.length !== 3 || !p.every(Number.isFinite)) throw invalid(where, `instance ${sop} has no usable ImagePositionPatient`);
  return [p[0], p[1], p[2]];
}

/** Source series from WADO-RS series metadata (DICOM JSON, one dataset per instance). */
export function sourceSeriesFromDicomJson(datasets: readonly DicomJsonDataset[], where: string): SourceSeries {
  if (datasets.length === 0) throw invalid(where, 'the server returned no instances');
  const first = datasets[0];
  const text = (tag: string): string => strings(first, tag).join('\\');
  const patientStudy = patientStudySchema.safeParse({
    PatientName: text(T.PatientName),
    PatientID: text(T.PatientID),
    ...(str(first, T.IssuerOfPatientID) ? { IssuerOfPatientID: str(first, T.IssuerOfPatientID) } : {}),
    PatientBirthDate: text(T.PatientBirthDate),
    PatientSex: text(T.PatientSex),
    StudyInstanceUID: text(T.StudyInstanceUID),
    StudyDate: text(T.StudyDate),
    StudyTime: text(T.StudyTime),
    ReferringPhysicianName: text(T.ReferringPhysicianName),
    StudyID: text(T.StudyID),
    AccessionNumber: text(T.AccessionNumber),
    ...(str(first, T.StudyDescription) ? { StudyDescription: str(first, T.StudyDescription) } : {}),
  });
  if (!patientStudy.success) throw invalid(where, `its study attributes are malformed (${patientStudy.error.issues[0]?.path.join('.')})`);
  const seriesInstanceUid = str(first, T.SeriesInstanceUID);
  const frameOfReferenceUid = str(first, T.FrameOfReferenceUID);
  if (!seriesInstanceUid) throw invalid(where, 'it has no SeriesInstanceUID');
  if (!frameOfReferenceUid) throw invalid(where, 'it has no FrameOfReferenceUID (a SEG must share it)');
  const instances = datasets.map((ds) => {
    const sop = str(ds, T.SOPInstanceUID);
    const cls = str(ds, T.SOPClassUID);
    if (!sop || !cls) throw invalid(where, 'an instance has no SOPInstanceUID or SOPClassUID');
    if (str(ds, T.FrameOfReferenceUID) !== frameOfReferenceUid) throw invalid(where, `instance ${sop} has another Frame of Reference`);
    return { sopInstanceUid: sop, sopClassUid: cls, positionMm: positionOf(strings(ds, T.ImagePositionPatient), where, sop) };
  });
  return { seriesInstanceUid, frameOfReferenceUid, patientStudy: patientStudy.data, instances };
}

/** WADO-RS `GET /studies/{s}/series/{se}/metadata`: every instance's attributes as DICOM JSON, no pixels. */
export async function fetchSeriesMetadata(client: DicomWebClient, studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<DicomJsonDataset[]> {
  return client.http.request(
    {
      path: `/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/metadata`,
      accept: 'application/dicom+json, application/json;q=0.9',
      operation: 'WADO-RS series metadata retrieve',
      studyInstanceUid: studyUid,
      seriesInstanceUid: seriesUid,
      signal,
    },
    async (res) => {
      const body = await readBody(res.body, 256 * 1024 * 1024);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw new VbmdError('remote', `DICOMweb server ${client.server} returned series metadata that is not JSON.`);
      }
      const parsed = dicomJsonArraySchema.safeParse(json);
      if (!parsed.success) throw new VbmdError('remote', `DICOMweb server ${client.server} returned series metadata that is not DICOM JSON.`);
      return parsed.data;
    },
  );
}

/** The source series as the PACS holds it (WADO-RS metadata). */
export async function fetchSourceSeries(client: DicomWebClient, studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<SourceSeries> {
  return sourceSeriesFromDicomJson(await fetchSeriesMetadata(client, studyUid, seriesUid, signal), `series ${seriesUid} on ${client.server}`);
}

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

function personName(v: unknown): string {
  const x = Array.isArray(v) ? v[0] : v;
  if (typeof x === 'string') return x;
  if (x && typeof x === 'object' && typeof (x as { Alphabetic?: unknown }).Alphabetic === 'string') return (x as { Alphabetic: string }).Alphabetic;
  return '';
}

async function headerBytes(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Source series from Part-10 files of one series (`vbmd analyze DIR --dicom-out`). */
export async function sourceSeriesFromFiles(files: readonly string[], where: string): Promise<SourceSeries> {
  if (files.length === 0) throw invalid(where, 'it has no files');
  const instances: SourceInstance[] = [];
  for (const file of files) {
    let h;
    try {
      h = parseDicomHeader(await headerBytes(file), file, true);
    } catch (e) {
      if (!(isVbmdError(e) && e.details.needMoreBytes)) throw e;
      h = parseDicomHeader(await readFile(file), file);
    }
    if (!h.imagePositionMm) throw invalid(where, `${file} has no ImagePositionPatient`);
    instances.push({ sopInstanceUid: h.sopInstanceUid, sopClassUid: h.sopClassUid ?? '', positionMm: h.imagePositionMm });
  }
  const bytes = await readFile(files[0]);
  const ds = DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, { untilTag: '7FE00010' }).dict);
  const s = (k: string): string => {
    const v = ds[k];
    return v === undefined || v === null ? '' : Array.isArray(v) ? v.map(String).join('\\') : String(v);
  };
  const patientStudy = patientStudySchema.safeParse({
    PatientName: personName(ds.PatientName),
    PatientID: s('PatientID'),
    ...(s('IssuerOfPatientID') ? { IssuerOfPatientID: s('IssuerOfPatientID') } : {}),
    PatientBirthDate: s('PatientBirthDate'),
    PatientSex: s('PatientSex'),
    StudyInstanceUID: s('StudyInstanceUID'),
    StudyDate: s('StudyDate'),
    StudyTime: s('StudyTime'),
    ReferringPhysicianName: personName(ds.ReferringPhysicianName),
    StudyID: s('StudyID'),
    AccessionNumber: s('AccessionNumber'),
    ...(s('StudyDescription') ? { StudyDescription: s('StudyDescription') } : {}),
  });
  if (!patientStudy.success) throw invalid(where, `its study attributes are malformed (${patientStudy.error.issues[0]?.path.join('.')})`);
  if (instances.some((i) => !i.sopClassUid)) throw invalid(where, 'an instance has no SOPClassUID');
  const frameOfReferenceUid = s('FrameOfReferenceUID');
  if (!frameOfReferenceUid) throw invalid(where, 'it has no FrameOfReferenceUID (a SEG must share it)');
  return { seriesInstanceUid: s('SeriesInstanceUID'), frameOfReferenceUid, patientStudy: patientStudy.data, instances };
}

/**
 * Source instance per volume slice (index k), matched by position along the slice normal. A slice the
 * assembly interpolated (a gap in the series) has no instance: undefined there.
 */
export function instancesBySlice(volume: Volume, series: SourceSeries): (SourceInstance | undefined)[] {
  const nz = volume.dims[2];
  const dk = volume.direction[2];
  const sz = volume.spacingMm[2];
  const out: (SourceInstance | undefined)[] = new Array(nz).fill(undefined);
  for (const inst of series.instances) {
    const d = [0, 1, 2].reduce((a, i) => a + (inst.positionMm[i] - volume.originMm[i]) * dk[i], 0) / sz;
    const k = Math.round(d);
    // A quarter slice off means the instance is not on this grid (another series' geometry).
    if (k < 0 || k >= nz || Math.abs(d - k) > 0.25) {
      throw new VbmdError('bad-input', `Instance ${inst.sopInstanceUid} of series ${series.seriesInstanceUid} does not lie on a slice of the analysed volume.`);
    }
    out[k] ??= inst;
  }
  return out;
}
