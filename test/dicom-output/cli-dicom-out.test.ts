import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stowClientFromConfig } from '../../src/dicom-output/pacs-step.js';
import { loadEnvConfig } from '../../src/config.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import { tempDir } from '../dicom/synthetic-series.js';
import { dciodvfy } from '../support/dicom-validators.js';

/** `vbmd analyze DIR --dicom-out OUT` as a user runs it, and where the configuration sends results. */
const root = resolve(__dirname, '../..');
let dir: string;
let cleanup: () => Promise<void>;
let dicomDir: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('cli-dicom-out'));
  const phantom = generatePhantom({ seed: 77, levels: 'T12-L2', size: 160, sliceThicknessMm: 2, kvp: 120 });
  dicomDir = (await writePhantom(join(dir, 'phantom'), phantom)).dicomDir;
}, 120_000);
afterAll(async () => {
  await cleanup?.();
});

const vbmd = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'analyze', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, VBMD_MODEL: 'false' } });

describe('vbmd analyze --dicom-out', () => {
  it('writes the SR, SEG and key image of the analysis, each valid for dciodvfy', () => {
    const out = join(dir, 'results');
    const r = vbmd(dicomDir, '--dicom-out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['vbmd-key-image.dcm', 'vbmd-seg.dcm', 'vbmd-sr.dcm']);
    for (const f of readdirSync(out)) expect(dciodvfy(join(out, f)).errors, f).toEqual([]);
  });

  it('refuses a NIfTI input with one sentence (nothing to reference)', () => {
    const r = vbmd(join(dir, 'ct.nii.gz'), '--dicom-out', join(dir, 'x'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--dicom-out needs DICOM input');
  });
});

describe('STOW target from configuration', () => {
  it('defaults to the DICOMweb base with its credentials, sends credentials nowhere else, and can be switched off', () => {
    const base = { DICOMWEB_URL: 'https://pacs.example.org/dicom-web', DICOMWEB_BEARER_TOKEN: 'tok' };
    const same = stowClientFromConfig(loadEnvConfig(base))!;
    expect(same.server).toBe('https://pacs.example.org/dicom-web');
    const other = stowClientFromConfig(loadEnvConfig({ ...base, STOW_URL: 'https://archive.example.org/dicomweb' }))!;
    expect(other.server).toBe('https://archive.example.org/dicomweb');
    return Promise.all([same.http.baseHeaders(), other.http.baseHeaders()]).then(([a, b]) => {
      expect(a.authorization).toBe('Bearer tok');
      expect(b.authorization).toBeUndefined();
      expect(stowClientFromConfig(loadEnvConfig({ ...base, STOW_URL: 'none' }))).toBeUndefined();
      expect(stowClientFromConfig(loadEnvConfig({}))).toBeUndefined();
      expect(() => loadEnvConfig({ STOW_URL: 'ftp://x' })).toThrow(/STOW_URL/);
      same.close();
      other.close();
    });
  });
});
