import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ds, newDicomUid, writeCtSeries } from '../../src/dicom/write-series.js';
import type { Volume } from '../../src/imaging/volume.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vbmd-write-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ramp(dims: [number, number, number]): Float32Array {
  const hu = new Float32Array(dims[0] * dims[1] * dims[2]);
  for (let n = 0; n < hu.length; n++) hu[n] = (n % 2500) - 1100;
  return hu;
}

describe('writeCtSeries', () => {
  it('writes one CT Image Storage file per slice with geometry, identity and stored = HU - intercept', async () => {
    const dims: [number, number, number] = [16, 12, 5];
    const hu = ramp(dims);
    const c = Math.SQRT1_2;
    const volume: Volume = {
      hu,
      dims,
      spacingMm: [0.8, 0.9, 1.25],
      originMm: [-10, 20.5, -300],
      // rotated about the z axis: still axial, exercises non-identity cosines
      direction: [
        [c, c, 0],
        [-c, c, 0],
        [0, 0, 1],
      ],
    };
    const study = newDicomUid();
    const paths = await writeCtSeries(join(dir, 'a'), volume, {
      patientId: 'PAT-7',
      studyInstanceUid: study,
      accessionNumber: 'ACC42',
      acquisitionDateTime: '2024-03-05T10:20:30',
      seriesDescription: 'Chest 1.25',
      manufacturer: 'GE MEDICAL SYSTEMS',
      manufacturerModelName: 'Revolution',
      kvp: 120,
      contrastAgent: 'IOHEXOL',
    });
    expect(paths).toHaveLength(5);
    const series = new Set<string>();
    for (let k = 0; k < 5; k++) {
      const d = dicomParser.parseDicom(await readFile(paths[k]));
      expect(d.string('x00020010')).toBe('1.2.840.10008.1.2.1');
      expect(d.string('x00080016')).toBe('1.2.840.10008.5.1.4.1.1.2');
      expect(d.string('x00080060')).toBe('CT');
      expect(d.string('x00080008')).toBe('ORIGINAL\\PRIMARY\\AXIAL');
      expect(d.string('x0020000d')).toBe(study);
      series.add(d.string('x0020000e') ?? '');
      expect(d.string('x00100020')).toBe('PAT-7');
      expect(d.string('x00080050')).toBe('ACC42');
      expect(d.string('x00080020')).toBe('20240305');
      expect(d.string('x0008002a')).toBe('20240305102030');
      expect(d.string('x0008103e')).toBe('Chest 1.25');
      expect(d.string('x00080070')).toBe('GE MEDICAL SYSTEMS');
      expect(d.string('x00081090')).toBe('Revolution');
      expect(d.floatString('x00180060')).toBe(120);
      expect(d.string('x00180010')).toBe('IOHEXOL');
      expect(d.intString('x00200013')).toBe(k + 1);
      expect(d.floatString('x00180050')).toBe(1.25);
      // PixelSpacing is row spacing \ column spacing (PS3.3 C.7.6.2.1.1)
      expect(d.floatString('x00280030', 0)).toBeCloseTo(0.9, 6);
      expect(d.floatString('x00280030', 1)).toBeCloseTo(0.8, 6);
      const iop = [0, 1, 2, 3, 4, 5].map((i) => d.floatString('x00200037', i) ?? NaN);
      expect(iop[0]).toBeCloseTo(c, 6);
      expect(iop[3]).toBeCloseTo(-c, 6);
      expect(d.floatString('x00200032', 2)).toBeCloseTo(-300 + 1.25 * k, 6);
      expect(d.floatString('x00281052')).toBe(-1024);
      expect(d.floatString('x00281053')).toBe(1);
      expect(d.uint16('x00280103')).toBe(1);
      const el = d.elements.x7fe00010;
      expect(el.length).toBe(16 * 12 * 2);
      const px = new Int16Array(d.byteArray.buffer.slice(d.byteArray.byteOffset + el.dataOffset, d.byteArray.byteOffset + el.dataOffset + el.length));
      const plane = 16 * 12;
      for (let n = 0; n < plane; n++) expect(px[n]).toBe(Math.round(hu[k * plane + n] + 1024));
    }
    expect(series.size).toBe(1);
  });

  it('omits unset optional attributes and honours a custom rescale', async () => {
    const dims: [number, number, number] = [4, 4, 2];
    const hu = ramp(dims);
    const paths = await writeCtSeries(join(dir, 'b'), { hu, dims, spacingMm: [1, 1, 2], originMm: [0, 0, 0], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }, {
      patientId: 'P',
      rescaleIntercept: -1000,
      rescaleSlope: 2,
    });
    const d = dicomParser.parseDicom(await readFile(paths[1]));
    expect(d.elements.x00180010).toBeUndefined();
    expect(d.elements.x00180060).toBeUndefined();
    const el = d.elements.x7fe00010;
    const px = new Int16Array(d.byteArray.buffer.slice(d.byteArray.byteOffset + el.dataOffset, d.byteArray.byteOffset + el.dataOffset + el.length));
    expect(px[3]).toBe(Math.round((hu[16 + 3] + 1000) / 2));
  });

  it('produces files a third-party reader (gdcminfo) accepts as CT with the right geometry', async () => {
    const dims: [number, number, number] = [8, 8, 3];
    const paths = await writeCtSeries(join(dir, 'c'), { hu: ramp(dims), dims, spacingMm: [0.5, 0.5, 3], originMm: [1, 2, 3], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }, { patientId: 'P' });
    const r = spawnSync('/usr/bin/gdcminfo', [paths[2]], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('CT Image Storage');
    expect(r.stdout).toContain('Origin: (1,2,9)');
    expect(r.stdout).toContain('Spacing: (0.5,0.5,'); // one file: gdcm cannot know the slice spacing
  });

  it('formats decimal strings within 16 characters', () => {
    expect(ds(0.1 + 0.2)).toBe('0.3');
    expect(ds(-123.456789012345678).length).toBeLessThanOrEqual(16);
    expect(ds(1e-12)).toBe('0');
  });
});
