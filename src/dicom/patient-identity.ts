import type { DataSet } from 'dicom-parser';
import { str } from './dataset-values.js';
import type { DicomJsonDataset } from './dicomweb/dicom-json.js';
import { str as jsonStr } from './dicomweb/dicom-json.js';

/**
 * Who a study says it belongs to: the Patient module (PS3.3 C.7.1.1: PatientID, IssuerOfPatientID,
 * PatientName, PatientBirthDate) and the accession number with its issuer (C.7.2.1:
 * IssuerOfAccessionNumberSequence), read from a file's header or a QIDO-RS study row. Used to check that a
 * result goes to the chart of the patient whose images were measured. PHI: never logged.
 */
export interface DicomPatientIdentity {
  patientId?: string;
  issuerOfPatientId?: string;
  /** DICOM PN, "Family^Given^Middle^Prefix^Suffix". */
  patientName?: string;
  /** YYYYMMDD */
  birthDate?: string;
  accessionNumber?: string;
  /** The accession's issuer: a FHIR-style system (`urn:oid:` for an ISO UniversalEntityID) or the local id. */
  accessionIssuer?: string;
}

export const IDENTITY_TAGS = {
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  PatientBirthDate: '00100030',
  AccessionNumber: '00080050',
  IssuerOfAccessionNumberSequence: '00080051',
  LocalNamespaceEntityID: '00400031',
  UniversalEntityID: '00400032',
  UniversalEntityIDType: '00400033',
} as const;

const trimmed = (v: string | undefined): string | undefined => {
  const t = v?.trim();
  return t ? t : undefined;
};

/** An HL7 v2 HD-like issuer as one string: ISO OIDs as `urn:oid:...`, anything else as given. */
function issuerOf(local: string | undefined, universal: string | undefined, universalType: string | undefined): string | undefined {
  const u = trimmed(universal);
  if (u) return trimmed(universalType)?.toUpperCase() === 'ISO' && /^[0-2](\.\d+)+$/.test(u) ? `urn:oid:${u}` : u;
  return trimmed(local);
}

function compact(id: DicomPatientIdentity): DicomPatientIdentity {
  return Object.fromEntries(Object.entries(id).filter(([, v]) => v !== undefined)) as DicomPatientIdentity;
}

const t = (tag: string): string => `x${tag.toLowerCase()}`;

export function identityFromDataSet(ds: DataSet): DicomPatientIdentity {
  const item = ds.elements[t(IDENTITY_TAGS.IssuerOfAccessionNumberSequence)]?.items?.[0]?.dataSet;
  return compact({
    patientId: trimmed(str(ds, t(IDENTITY_TAGS.PatientID))),
    issuerOfPatientId: trimmed(str(ds, t(IDENTITY_TAGS.IssuerOfPatientID))),
    patientName: trimmed(str(ds, t(IDENTITY_TAGS.PatientName))),
    birthDate: trimmed(str(ds, t(IDENTITY_TAGS.PatientBirthDate))),
    accessionNumber: trimmed(str(ds, t(IDENTITY_TAGS.AccessionNumber))),
    accessionIssuer: item
      ? issuerOf(str(item, t(IDENTITY_TAGS.LocalNamespaceEntityID)), str(item, t(IDENTITY_TAGS.UniversalEntityID)), str(item, t(IDENTITY_TAGS.UniversalEntityIDType)))
      : undefined,
  });
}

export function identityFromDicomJson(ds: DicomJsonDataset): DicomPatientIdentity {
  const seq = ds[IDENTITY_TAGS.IssuerOfAccessionNumberSequence]?.Value?.[0];
  const item = seq && typeof seq === 'object' ? (seq as DicomJsonDataset) : undefined;
  return compact({
    patientId: jsonStr(ds, IDENTITY_TAGS.PatientID),
    issuerOfPatientId: jsonStr(ds, IDENTITY_TAGS.IssuerOfPatientID),
    patientName: jsonStr(ds, IDENTITY_TAGS.PatientName),
    birthDate: jsonStr(ds, IDENTITY_TAGS.PatientBirthDate),
    accessionNumber: jsonStr(ds, IDENTITY_TAGS.AccessionNumber),
    accessionIssuer: item
      ? issuerOf(jsonStr(item, IDENTITY_TAGS.LocalNamespaceEntityID), jsonStr(item, IDENTITY_TAGS.UniversalEntityID), jsonStr(item, IDENTITY_TAGS.UniversalEntityIDType))
      : undefined,
  });
}
