import type { HumanName, Patient } from 'fhir/r4.js';
import type { DicomPatientIdentity } from '../dicom/patient-identity.js';

/**
 * Is the patient whose images were measured the patient whose chart the result is about to go to? The
 * order (or the caller) names a FHIR Patient; the study names a DICOM patient. First by identifier: the
 * study's PatientID against the Patient's identifiers of the relevant system (the system its
 * IssuerOfPatientID maps to, else the configured MRN system, else any system). Only when there is no
 * identifier to compare, by name and birth date, both required. Anything else is not a match: the result
 * is held for review rather than written to a chart it may not belong to. Reasons carry no PHI.
 */
export interface PatientMatchConfig {
  /** FHIR identifier system of the MRN the PACS uses as PatientID (PATIENT_MRN_SYSTEM). */
  mrnSystem?: string;
  /** DICOM issuer (IssuerOfPatientID, accession issuer) -> FHIR identifier system (DICOM_ISSUER_SYSTEMS). */
  issuerSystems?: Readonly<Record<string, string>>;
}

export type PatientMatch =
  | { ok: true; by: 'identifier' | 'name-and-birth-date' }
  | { ok: false; reason: string };

/** The FHIR system an issuer maps to: configured, or the issuer itself when it already is a URI. */
export function systemForIssuer(issuer: string | undefined, cfg: PatientMatchConfig): string | undefined {
  if (!issuer) return undefined;
  return cfg.issuerSystems?.[issuer] ?? (/^(urn:|https?:\/\/)/.test(issuer) ? issuer : undefined);
}

/** Letters only, upper case, accents removed: "O'Brien-Smith" and "OBRIEN SMITH" compare equal. */
function normalizeName(s: string | undefined): string {
  return (s ?? '')
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toUpperCase()
    .replace(/[^\p{L}]/gu, '');
}

interface NameParts {
  family: string;
  given: string;
}

/** DICOM PN (PS3.5 6.2): alphabetic group before '=', components family^given^middle^prefix^suffix. */
function dicomName(pn: string | undefined): NameParts | undefined {
  const alpha = (pn ?? '').split('=')[0] ?? '';
  const [family, given] = alpha.split('^');
  const f = normalizeName(family);
  return f ? { family: f, given: normalizeName(given) } : undefined;
}

function fhirNames(names: readonly HumanName[] | undefined): NameParts[] {
  const out: NameParts[] = [];
  for (const n of names ?? []) {
    const f = normalizeName(n.family);
    if (f) out.push({ family: f, given: normalizeName(n.given?.[0]) });
  }
  return out;
}

function sameName(a: NameParts, b: NameParts): boolean {
  return a.family === b.family && (a.given === '' || b.given === '' || a.given === b.given);
}

function dicomDate(d: string | undefined): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec((d ?? '').trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

export function matchPatient(study: DicomPatientIdentity, patient: Patient, cfg: PatientMatchConfig): PatientMatch {
  const ref = `Patient/${patient.id ?? '?'}`;
  const system = systemForIssuer(study.issuerOfPatientId, cfg) ?? cfg.mrnSystem;
  const ids = (patient.identifier ?? []).filter((i) => i.value && (system === undefined || i.system === system));
  if (study.patientId && ids.length > 0) {
    if (ids.some((i) => i.value!.trim() === study.patientId)) return { ok: true, by: 'identifier' };
    return {
      ok: false,
      reason: `The study's DICOM PatientID is not among the identifiers of ${ref}${system ? ` of system ${system}` : ''}: the images may belong to another patient.`,
    };
  }
  // No identifier to compare: both name and birth date must be there and agree.
  const dName = dicomName(study.patientName);
  const dBirth = dicomDate(study.birthDate);
  const names = fhirNames(patient.name);
  const why = study.patientId ? `${ref} has no identifier${system ? ` of system ${system}` : ''} to compare with the study's PatientID` : 'the study has no PatientID';
  if (!dName || !dBirth || names.length === 0 || !patient.birthDate) {
    return { ok: false, reason: `Cannot confirm the patient: ${why}, and name and birth date are not both present on the study and on ${ref}.` };
  }
  if (patient.birthDate !== dBirth) return { ok: false, reason: `The study's birth date differs from that of ${ref} (${why}).` };
  if (!names.some((n) => sameName(n, dName))) return { ok: false, reason: `The study's patient name differs from that of ${ref} (${why}).` };
  return { ok: true, by: 'name-and-birth-date' };
}

/**
 * Does a study's accession issuer agree with the issuer (identifier system) the order gave its accession?
 * Only when both are given; a mapped DICOM issuer is compared as its FHIR system.
 */
export function accessionIssuerAgrees(studyIssuer: string | undefined, orderSystem: string | undefined, cfg: PatientMatchConfig): boolean {
  if (!studyIssuer || !orderSystem) return true;
  return (systemForIssuer(studyIssuer, cfg) ?? studyIssuer) === orderSystem;
}
