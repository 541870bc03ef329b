import dcmjs from 'dcmjs';
import type { VbmdReport } from '../bmd/report.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLEMENTATION_CLASS_UID } from '../dicom/write-series.js';
import { PRIVATE_SCHEME_IDENTIFICATION } from './codes.js';
import type { SourceSeries } from './source-series.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

/** One DICOM object as written: its identity and its Part-10 bytes (explicit VR little endian). */
export interface DicomObject {
  kind: 'sr' | 'seg' | 'key-image' | 'rejection-note';
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  bytes: Uint8Array;
}

/** A naturalized dcmjs dataset (keywords as keys, sequences as arrays of datasets). */
export type Dataset = Record<string, unknown>;

/** Part-10 file (preamble, meta header, dataset) for a naturalized dataset carrying SOPClassUID/SOPInstanceUID. */
export function writePart10(dataset: Dataset): Uint8Array {
  const sopClassUid = String(dataset.SOPClassUID);
  const sopInstanceUid = String(dataset.SOPInstanceUID);
  const meta = DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: 'VBMD_0_1',
  });
  const dict = new DicomDict(meta);
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write());
}

/** DICOM DA/TM in UTC (TimezoneOffsetFromUTC says so). */
export function dicomDateTimeUtc(at: Date): { date: string; time: string } {
  const iso = at.toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, ''), time: iso.slice(11, 19).replace(/:/g, '') };
}

export const MANUFACTURER = 'vbmd project';

/** Producing software: engine version and, when a model ran, the model name, version and weights hash. */
export function softwareVersions(report: VbmdReport): string[] {
  const v = [`${report.software?.name ?? 'vbmd'} ${report.software?.version ?? 'unknown'}`];
  if (report.model) v.push(`${report.model.name} ${report.model.version}`, `sha256:${report.model.sha256.slice(0, 48)}`);
  return v;
}

/**
 * Modules every derived object shares: SOP Common, Patient and General Study copied from the source (same
 * study, same patient), General Series basics, General Equipment (the software as the device), and the private
 * coding scheme declaration. UTF-8 character set, since names from the PACS may hold any script.
 */
export function commonModules(
  source: SourceSeries,
  report: VbmdReport,
  o: { sopClassUid: string; sopInstanceUid: string; seriesInstanceUid: string; modality: string; seriesNumber: number; seriesDescription: string; createdAt: Date },
): Dataset {
  const { date, time } = dicomDateTimeUtc(o.createdAt);
  const ps = source.patientStudy;
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: o.sopClassUid,
    SOPInstanceUID: o.sopInstanceUid,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    TimezoneOffsetFromUTC: '+0000',
    PatientName: ps.PatientName,
    PatientID: ps.PatientID,
    ...(ps.IssuerOfPatientID ? { IssuerOfPatientID: ps.IssuerOfPatientID } : {}),
    PatientBirthDate: ps.PatientBirthDate,
    PatientSex: ps.PatientSex,
    StudyInstanceUID: ps.StudyInstanceUID,
    StudyDate: ps.StudyDate,
    StudyTime: ps.StudyTime,
    ReferringPhysicianName: ps.ReferringPhysicianName,
    StudyID: ps.StudyID,
    AccessionNumber: ps.AccessionNumber,
    ...(ps.StudyDescription ? { StudyDescription: ps.StudyDescription } : {}),
    Modality: o.modality,
    SeriesInstanceUID: o.seriesInstanceUid,
    SeriesNumber: String(o.seriesNumber),
    SeriesDescription: o.seriesDescription,
    SeriesDate: date,
    SeriesTime: time,
    Manufacturer: MANUFACTURER,
    ManufacturerModelName: report.software?.name ?? 'vbmd',
    SoftwareVersions: softwareVersions(report),
    CodingSchemeIdentificationSequence: [PRIVATE_SCHEME_IDENTIFICATION],
  };
}
