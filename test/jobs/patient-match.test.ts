import type { Patient } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { accessionIssuerAgrees, matchPatient } from '../../src/jobs/patient-match.js';

/** The chart cross-check's rules, case by case (pure function; no PHI in any reason). */
const MRN = 'urn:oid:2.16.840.1.113883.3.9999.1';
const patient = (over: Partial<Patient> = {}): Patient => ({
  resourceType: 'Patient',
  id: 'pa',
  identifier: [
    { system: MRN, value: 'MRN-A' },
    { system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-00-1111' },
  ],
  name: [{ family: "O'Brien", given: ['Ann'] }],
  birthDate: '1950-02-03',
  ...over,
});

describe('matchPatient', () => {
  it('matches by PatientID in any system when none is configured', () => {
    expect(matchPatient({ patientId: 'MRN-A' }, patient(), {})).toEqual({ ok: true, by: 'identifier' });
  });

  it('a PatientID that is not among the identifiers is a mismatch, whatever the names say', () => {
    const r = matchPatient({ patientId: 'MRN-B', patientName: "O'BRIEN^ANN", birthDate: '19500203' }, patient(), {});
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toContain('PatientID is not among the identifiers of Patient/pa');
      expect(r.reason).not.toContain('MRN-B');
      expect(r.reason).not.toMatch(/brien/i);
    }
  });

  it('uses only the configured MRN system, and the system IssuerOfPatientID maps to before it', () => {
    // The SSN value equals the PatientID, but the MRN system is configured: no match on the SSN.
    expect(matchPatient({ patientId: '999-00-1111' }, patient(), { mrnSystem: MRN }).ok).toBe(false);
    expect(matchPatient({ patientId: 'MRN-A' }, patient(), { mrnSystem: MRN }).ok).toBe(true);
    const cfg = { mrnSystem: 'urn:other', issuerSystems: { 'HOSP-A': MRN } };
    expect(matchPatient({ patientId: 'MRN-A', issuerOfPatientId: 'HOSP-A' }, patient(), cfg)).toEqual({ ok: true, by: 'identifier' });
    expect(matchPatient({ patientId: 'MRN-A' }, patient(), cfg).ok).toBe(false);
  });

  it('without an identifier to compare, needs both name and birth date to agree', () => {
    const noIds = patient({ identifier: [] });
    expect(matchPatient({ patientId: 'X', patientName: 'OBRIEN^ANN^M', birthDate: '19500203' }, noIds, {})).toEqual({ ok: true, by: 'name-and-birth-date' });
    expect(matchPatient({ patientName: 'Obrien', birthDate: '19500203' }, noIds, {})).toEqual({ ok: true, by: 'name-and-birth-date' });
    expect(matchPatient({ patientName: 'OBRIEN^BOB', birthDate: '19500203' }, noIds, {}).ok).toBe(false);
    expect(matchPatient({ patientName: 'OBRIEN^ANN', birthDate: '19500204' }, noIds, {}).ok).toBe(false);
    const missing = matchPatient({ patientName: 'OBRIEN^ANN' }, noIds, {});
    expect(missing).toMatchObject({ ok: false, reason: expect.stringContaining('Cannot confirm the patient') });
    expect(matchPatient({}, patient({ identifier: [], name: [], birthDate: undefined }), {}).ok).toBe(false);
  });
});

describe('accessionIssuerAgrees', () => {
  it('compares only when both sides give an issuer, mapped DICOM issuers as their FHIR system', () => {
    expect(accessionIssuerAgrees(undefined, 'urn:oid:1.2', {})).toBe(true);
    expect(accessionIssuerAgrees('urn:oid:1.2', undefined, {})).toBe(true);
    expect(accessionIssuerAgrees('urn:oid:1.2', 'urn:oid:1.2', {})).toBe(true);
    expect(accessionIssuerAgrees('urn:oid:9.9', 'urn:oid:1.2', {})).toBe(false);
    expect(accessionIssuerAgrees('RIS-A', 'https://ris.example.org/acc', { issuerSystems: { 'RIS-A': 'https://ris.example.org/acc' } })).toBe(true);
    expect(accessionIssuerAgrees('RIS-B', 'https://ris.example.org/acc', { issuerSystems: { 'RIS-A': 'https://ris.example.org/acc' } })).toBe(false);
  });
});
