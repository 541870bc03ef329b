import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, isBuildFresh } from '../../bin/build.mjs';
import { runAnalysis } from '../../src/analysis/run-analysis.js';
import { vbmdReport } from '../../src/bmd/report.js';
import { COMMAND_SUMMARIES } from '../../src/cli/summaries.js';
import { closeSharedModelRunner } from '../../src/model/shared-runner.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';

/**
 * The built `vbmd` (bin/build.mjs: esbuild bundle of src/cli.ts plus the worker entries) does what the sources
 * do. Built into a folder of its own under node_modules (packages resolve from there, the user's dist/ is left
 * alone), then run as a user runs it.
 */
const root = resolve(import.meta.dirname, '..', '..');
const outDir = join(root, 'node_modules', '.cache', `vbmd-build-test-${process.pid}`);
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vbmd-cli-bundle-'));
  const p = generatePhantom({ seed: 12, levels: 'T12-L3', size: 128, pixelSpacingMm: 2.8, sliceThicknessMm: 2, noiseHu: 12 });
  await writePhantom(join(dir, 'study'), p);
  await buildCli({ outDir });
}, 120_000);
afterAll(async () => {
  await closeSharedModelRunner();
  rmSync(dir, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
});

function runBuilt(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(outDir, 'cli.js'), ...args], { cwd: root, encoding: 'utf8' });
}

describe('the built CLI', () => {
  it('help lists every command from its summary', () => {
    const r = runBuilt(['--help']);
    expect(r.status).toBe(0);
    for (const [name, summary] of Object.entries(COMMAND_SUMMARIES)) {
      expect(r.stdout).toContain(name);
      expect(r.stdout.replace(/\s+/g, ' ')).toContain(summary.slice(0, 30));
    }
    const one = runBuilt(['help', 'analyze']);
    expect(one.status).toBe(0);
    expect(one.stdout).toContain('--dicom-out');
  });

  it('vbmd analyze (model in the built worker thread) reports exactly what the sources report', async () => {
    const built = runBuilt(['analyze', join(dir, 'study'), '--json']);
    expect(built.stderr).toBe('');
    expect(built.status).toBe(0);
    const fromBuild = vbmdReport.parse(JSON.parse(built.stdout));
    const fromSources = vbmdReport.parse(JSON.parse(JSON.stringify(await runAnalysis({ path: join(dir, 'study') }))));
    expect(fromBuild.model?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(fromBuild.levels.length).toBeGreaterThan(2);
    expect({ ...fromBuild, timingsMs: {} }).toEqual({ ...fromSources, timingsMs: {} });
  }, 120_000);

  it('a build older than one of its sources is stale (bin/vbmd.js rebuilds it before running)', () => {
    const infoPath = join(outDir, 'build-info.json');
    const info = JSON.parse(readFileSync(infoPath, 'utf8')) as { builtAt: number; inputs: string[] };
    expect(info.inputs).toEqual(expect.arrayContaining(['src/cli.ts', 'src/model/onnx-worker.ts', 'bin/build.mjs']));
    // Stated against the sources' mtimes now: others may edit the tree while this runs.
    const newest = Math.max(...info.inputs.map((p) => statSync(join(root, p)).mtimeMs));
    writeFileSync(infoPath, JSON.stringify({ ...info, builtAt: newest + 1000 }));
    expect(isBuildFresh(outDir)).toBe(true);
    writeFileSync(infoPath, JSON.stringify({ ...info, builtAt: newest - 1 }));
    expect(isBuildFresh(outDir)).toBe(false);
    rmSync(infoPath);
    expect(isBuildFresh(outDir)).toBe(false);
  });
});
