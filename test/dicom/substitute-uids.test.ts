import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameBasedUid, substituteUids, type UidSources } from '../../src/dicom/substitute-uids.js';
import { parseDicomHeaders, parseDicomSlice } from '../../src/dicom/parse.js';
import { withoutUids } from './no-uid.js';
import { syntheticVolume, tempDir, writeSeries } from './synthetic-series.js';

let dir: string;
let cleanup: () => Promise<void>;
let files: string[];
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('subst-uid'));
  files = await writeSeries(join(dir, 's'), { seriesNumber: 4, manufacturer: 'SIEMENS' }, syntheticVolume([16, 12, 3]));
});
afterAll(async () => {
  await cleanup();
});

const base: UidSources = {
  patientId: 'P1',
  studyDate: '20240506',
  studyTime: '070809',
  manufacturer: 'SIEMENS',
  modality: 'CT',
  seriesNumber: 2,
  imageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
  rows: 512,
  columns: 512,
  pixelSpacingMm: [0.976562, 0.976562],
  imageOrientation: [1, 0, 0, 0, 1, 0],
  sliceThicknessMm: 3,
};

describe('substitute UIDs', () => {
  it('are 2.25 UIDs of a version-5 UUID: valid, deterministic, distinct per name', () => {
    const a = nameBasedUid('x');
    expect(a).toMatch(/^2\.25\.(0|[1-9]\d{0,38})$/);
    expect(a.length).toBeLessThanOrEqual(64);
    expect(nameBasedUid('x')).toBe(a);
    expect(nameBasedUid('y')).not.toBe(a);
    const hex = BigInt(a.slice(5)).toString(16).padStart(32, '0');
    expect(hex[12]).toBe('5'); // version
    expect(['8', '9', 'a', 'b']).toContain(hex[16]); // RFC 4122 variant
  });

  it('keep the UIDs an image has and substitute only the missing ones', () => {
    const r = substituteUids({ ...base, studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4' }, () => 'digest');
    expect(r).toMatchObject({ studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4', substituted: ['instance'] });
    expect(substituteUids({ ...base, studyInstanceUid: '1', seriesInstanceUid: '2', sopInstanceUid: '3' }, () => 'd').substituted).toEqual([]);
  });

  it('group like dcm2niix: one series for slices that differ only in position and acquisition number', () => {
    const a = substituteUids(base, () => 'a');
    const b = substituteUids({ ...base, pixelSpacingMm: [0.9765621, 0.9765619] }, () => 'b');
    expect(b.studyInstanceUid).toBe(a.studyInstanceUid);
    expect(b.seriesInstanceUid).toBe(a.seriesInstanceUid);
    expect(b.sopInstanceUid).not.toBe(a.sopInstanceUid);
    // Anything that separates series in dcm2niix or in a volume separates them here.
    for (const other of [
      { seriesNumber: 3 },
      { modality: 'PT' },
      { manufacturer: 'GE' },
      { imageType: ['DERIVED', 'SECONDARY', 'AXIAL'] },
      { rows: 256 },
      { pixelSpacingMm: [0.7, 0.7] as [number, number] },
      { imageOrientation: [1, 0, 0, 0, 0, -1] },
      { sliceThicknessMm: 1 },
    ]) {
      expect(substituteUids({ ...base, ...other }, () => 'a').seriesInstanceUid, JSON.stringify(other)).not.toBe(a.seriesInstanceUid);
    }
    const otherStudy = substituteUids({ ...base, studyTime: '080000' }, () => 'a');
    expect(otherStudy.studyInstanceUid).not.toBe(a.studyInstanceUid);
    expect(otherStudy.seriesInstanceUid).not.toBe(a.seriesInstanceUid);
  });

  it('a parsed file with empty or absent UIDs gets the same substitute UIDs from a header scan and a full read', () => {
    for (const mode of ['empty', 'absent'] as const) {
      const bytes = withoutUids(readFileSync(files[1]), mode);
      const full = parseDicomSlice(bytes, 'f');
      const scanned = parseDicomHeaders(bytes.subarray(0, 2048), 'f', true)[0];
      expect(full.substitutedUids).toEqual(['study', 'series', 'instance']);
      expect([scanned.studyInstanceUid, scanned.seriesInstanceUid, scanned.sopInstanceUid]).toEqual([full.studyInstanceUid, full.seriesInstanceUid, full.sopInstanceUid]);
      for (const uid of [full.studyInstanceUid, full.seriesInstanceUid, full.sopInstanceUid]) expect(uid).toMatch(/^2\.25\.\d+$/);
    }
    // Slices of one series share study and series, not instance.
    const [a, b] = [files[0], files[2]].map((f) => parseDicomSlice(withoutUids(readFileSync(f), 'empty'), f));
    expect(a.seriesInstanceUid).toBe(b.seriesInstanceUid);
    expect(a.sopInstanceUid).not.toBe(b.sopInstanceUid);
  });
});
