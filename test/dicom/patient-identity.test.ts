import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { DicomWebSource } from '../../src/dicom/dicomweb/source.js';
import { startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { tempDir, writeSeries } from './synthetic-series.js';

/**
 * The patient a study says it belongs to, read without pixels: from a folder's header scan and from one
 * QIDO-RS study search on a real Orthanc, the same answer, issuers included (an ISO OID issuer as urn:oid).
 */
let orthanc: OrthancHandle;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let studyInstanceUid: string;

beforeAll(async () => {
  [orthanc, tmp] = await Promise.all([startOrthanc(), tempDir('identity')]);
  studyInstanceUid = '2.25.987654321987654321';
  const files = await writeSeries(tmp.dir, {
    studyInstanceUid,
    patientId: 'MRN-0042',
    patientName: 'Doe^Jane^Q',
    patientBirthDate: '19580123',
    accessionNumber: 'ACC-0042',
    extraAttributes: {
      IssuerOfPatientID: 'HOSP-A',
      IssuerOfAccessionNumberSequence: [{ UniversalEntityID: '1.2.826.0.1.3680043.8.498.1', UniversalEntityIDType: 'ISO' }],
    },
  });
  await orthanc.upload(files);
}, 120_000);

afterAll(async () => {
  await orthanc?.stop();
  await tmp?.cleanup();
});

const expected = {
  patientId: 'MRN-0042',
  issuerOfPatientId: 'HOSP-A',
  patientName: 'Doe^Jane^Q',
  birthDate: '19580123',
  accessionNumber: 'ACC-0042',
  accessionIssuer: 'urn:oid:1.2.826.0.1.3680043.8.498.1',
};

describe('study identity', () => {
  it('reads patient and accession (with issuers) from a folder without decoding pixels', async () => {
    const src = new FolderDicomSource(tmp.dir);
    expect(await src.studyIdentity(studyInstanceUid)).toEqual(expected);
    expect(await src.studyIdentity('1.2.3.999')).toBeUndefined();
  });

  it('reads the same from one QIDO-RS study search', async () => {
    const src = new DicomWebSource({ baseUrl: orthanc.dicomWebUrl, allowInsecureHttp: true });
    try {
      expect(await src.studyIdentity(studyInstanceUid)).toEqual(expected);
      expect(await src.studyIdentity('1.2.3.999')).toBeUndefined();
    } finally {
      src.close();
    }
  });
});
