import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrate, matchSiteCalibration, parseSiteCalibration, readSiteCalibrationFile } from '../../src/bmd/calibration/index.js';
import type { LoadedVolume } from '../../src/imaging/volume.js';
import { isVbmdError, VbmdError } from '../../src/util/errors.js';

const FILE = {
  scanners: [
    { manufacturer: 'GE MEDICAL SYSTEMS', model: 'Revolution', kvp: 120, slope: 1.21, intercept: 3.5 },
    { manufacturer: 'GE MEDICAL SYSTEMS', kvp: 100, slope: 1.33, intercept: 4, method: 'phantom' as const },
    { manufacturer: 'SIEMENS', slope: 1.18, intercept: -1 },
    { manufacturer: 'GE MEDICAL SYSTEMS', model: 'Revolution', slope: 9, intercept: 9 },
  ],
  default: { slope: 1.2, intercept: 0 },
};

function thrown(f: () => unknown): VbmdError {
  try {
    f();
  } catch (e) {
    if (isVbmdError(e)) return e;
    throw e;
  }
  throw new Error('expected a VbmdError');
}

describe('site calibration file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vbmd-cal-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('parses the documented format', () => {
    const f = parseSiteCalibration(FILE);
    expect(f.scanners).toHaveLength(4);
    expect(f.default).toEqual({ slope: 1.2, intercept: 0 });
    expect(parseSiteCalibration({ scanners: [] }).default).toBeUndefined();
  });

  it('matches the first entry whose given fields all match, case-insensitively; omitted fields match anything', () => {
    const f = parseSiteCalibration(FILE);
    const m1 = matchSiteCalibration(f, { manufacturer: 'GE MEDICAL SYSTEMS', manufacturerModelName: 'Revolution', kvp: 120 });
    expect(m1).toMatchObject({ kind: 'entry', index: 0 });
    // Entry 3 also matches this series but comes later: first match wins.
    const m2 = matchSiteCalibration(f, { manufacturer: 'ge medical systems ', manufacturerModelName: 'revolution', kvp: 140 });
    expect(m2).toMatchObject({ kind: 'entry', index: 3 });
    const m3 = matchSiteCalibration(f, { manufacturer: 'GE MEDICAL SYSTEMS', manufacturerModelName: 'Discovery', kvp: 100 });
    expect(m3).toMatchObject({ kind: 'entry', index: 1 });
    const m4 = matchSiteCalibration(f, { manufacturer: 'SIEMENS', kvp: 80 });
    expect(m4).toMatchObject({ kind: 'entry', index: 2 });
    // kVp given in the entry but unknown for the series: no match on that entry.
    const m5 = matchSiteCalibration(f, { manufacturer: 'GE MEDICAL SYSTEMS', manufacturerModelName: 'Discovery' });
    expect(m5).toMatchObject({ kind: 'default' });
    expect(matchSiteCalibration({ scanners: FILE.scanners }, { manufacturer: 'Philips', kvp: 120 })).toBeUndefined();
  });

  it('calibrate() uses the matched entry with its method, default as asynchronous', () => {
    const site = parseSiteCalibration(FILE);
    const loaded = (meta: LoadedVolume['meta']): LoadedVolume => ({
      volume: { hu: new Float32Array(8), dims: [2, 2, 2], spacingMm: [1, 1, 1], originMm: [0, 0, 0], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] },
      meta,
    });
    const a = calibrate({ loaded: loaded({ kind: 'dicom', source: 'x', manufacturer: 'GE MEDICAL SYSTEMS', kvp: 100 }), vertebralBodyCentersMm: [], site });
    expect(a).toMatchObject({ method: 'phantom', slope: 1.33, intercept: 4 });
    expect(a.uncalibrated).toBeUndefined();
    const b = calibrate({ loaded: loaded({ kind: 'dicom', source: 'x', manufacturer: 'Philips', kvp: 120 }), vertebralBodyCentersMm: [], site });
    expect(b).toMatchObject({ method: 'asynchronous', slope: 1.2, intercept: 0 });
    expect((b.references.matched as { entry: string }).entry).toBe('default');
  });

  it('rejects a bad file with one sentence naming the file and the field', async () => {
    const e1 = thrown(() => parseSiteCalibration({ scanners: [{ manufacturer: 'GE', intercept: 1 }] }, '/etc/site-cal.json'));
    expect(e1.message).toContain('/etc/site-cal.json');
    expect(e1.message).toContain('scanners[0].slope');
    const e2 = thrown(() => parseSiteCalibration({ scanners: [{ slope: -1, intercept: 0 }] }, 'cal.json'));
    expect(e2.message).toContain('scanners[0].slope');
    const e3 = thrown(() => parseSiteCalibration({ scaners: [] }, 'cal.json'));
    expect(e3.message).toMatch(/cal\.json/);
    const e4 = thrown(() => parseSiteCalibration({ scanners: [], default: { slope: 1.2 } }, 'cal.json'));
    expect(e4.message).toContain('default.intercept');

    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"scanners": [ {"slope": 1.2, ');
    await expect(readSiteCalibrationFile(bad)).rejects.toThrow(`Calibration file ${bad} is not valid JSON`);
    await expect(readSiteCalibrationFile(join(dir, 'missing.json'))).rejects.toThrow(/cannot be read \(ENOENT\)/);
    const good = join(dir, 'good.json');
    await writeFile(good, JSON.stringify(FILE));
    expect((await readSiteCalibrationFile(good)).scanners[0].slope).toBe(1.21);
  });
});
