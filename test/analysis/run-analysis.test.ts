import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAnalysis } from '../../src/analysis/run-analysis.js';
import { vbmdReport } from '../../src/bmd/report.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import { isVbmdError } from '../../src/util/errors.js';

const root = resolve(import.meta.dirname, '..', '..');
let dir: string;
let truthL1 = 0;
let cal = { slope: 1, intercept: 0 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vbmd-run-analysis-'));
  const p = generatePhantom({ seed: 11, levels: 'T11-L3', size: 128, pixelSpacingMm: 2.8, sliceThicknessMm: 2, noiseHu: 12 });
  truthL1 = p.truth.levels.find((l) => l.level === 'L1')!.vbmdMgCm3;
  cal = p.truth.calibration;
  await writePhantom(join(dir, 'study'), p);
  writeFileSync(join(dir, 'site.json'), JSON.stringify({ scanners: [], default: { slope: cal.slope, intercept: cal.intercept, method: 'phantom' } }));
  writeFileSync(join(dir, 'bad.json'), '{"scanners": "no"}');
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runAnalysis from disk', () => {
  it('analyzes a DICOM folder with a site calibration file and reports every stage time', async () => {
    const r = vbmdReport.parse(await runAnalysis({ path: join(dir, 'study') }, { calibrationFile: join(dir, 'site.json') }));
    expect(r.input.kind).toBe('dicom');
    expect(r.calibration.method).toBe('phantom');
    for (const k of ['load', 'spine', 'labels', 'roi', 'calibration', 'qc', 'total']) expect(r.timingsMs[k], k).toBeGreaterThanOrEqual(0);
    const l1 = r.levels.find((l) => l.level === 'L1');
    expect(l1).toBeDefined();
    expect(Math.abs(l1!.vbmd! - truthL1)).toBeLessThan(10);
  }, 60_000);

  it('rejects a bad calibration file and an empty folder with one clear VbmdError', async () => {
    const e1 = await runAnalysis({ path: join(dir, 'study') }, { calibrationFile: join(dir, 'bad.json') }).catch((e: unknown) => e);
    expect(isVbmdError(e1)).toBe(true);
    expect((e1 as Error).message).toMatch(/bad\.json/);
    const empty = join(dir, 'empty');
    mkdtempSync(empty);
    const e2 = await runAnalysis({ path: empty }).catch((e: unknown) => e);
    expect(isVbmdError(e2)).toBe(true);
  });

  it('vbmd analyze: JSON on stdout; a missing path exits non-zero with one sentence on stderr', () => {
    const ok = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'analyze', join(dir, 'study'), '--json'], { cwd: root, encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(vbmdReport.parse(JSON.parse(ok.stdout)).schema).toBe('vbmd.report/1');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'analyze', join(dir, 'nope')], { cwd: root, encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    const lines = bad.stderr.split('\n').filter((l) => l.startsWith('vbmd:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/does not exist/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
