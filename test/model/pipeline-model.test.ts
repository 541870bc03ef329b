import { afterAll, describe, expect, it } from 'vitest';
import { runAnalysis } from '../../src/analysis/run-analysis.js';
import { vbmdReport } from '../../src/bmd/report.js';
import { buildDevice } from '../../src/fhir/device.js';
import { MODEL_SHA256_CODE } from '../../src/fhir/codes.js';
import { generatePhantom } from '../../src/research/phantom/generate.js';
import { closeSharedModelRunner } from '../../src/model/shared-runner.js';
import { DEFAULT_MODEL_FILE, verifyModelFile } from '../../src/model/model-file.js';
import { VbmdError } from '../../src/util/errors.js';
import { ModelRunner } from '../../src/model/model-runner.js';

describe('the model in runAnalysis (CLI, job worker and sandbox share it)', () => {
  afterAll(async () => {
    await closeSharedModelRunner();
  });

  it('adds the model reading per level and the model identity that the FHIR Device carries', async () => {
    const p = generatePhantom({ seed: 4242, levels: 'T11-L3', size: 192, pixelSpacingMm: 0.9, sliceThicknessMm: 2 });
    const runner = await ModelRunner.start({ file: DEFAULT_MODEL_FILE, threads: 1 });
    try {
      const r = await runAnalysis({ loaded: p.loaded }, { model: runner });
      const committed = await verifyModelFile(DEFAULT_MODEL_FILE);
      expect(r.model).toEqual({ name: committed.name, version: committed.version, sha256: committed.sha256 });
      expect(r.levels.length).toBeGreaterThan(2);
      for (const l of r.levels) {
        expect(l.roiSource === 'model' || l.roiSource === 'geometric').toBe(true);
        expect(l.modelClassProbabilities).toBeTruthy();
        expect(l.geometricVbmd === null || typeof l.geometricVbmd === 'number').toBe(true);
      }
      expect(r.levels.some((l) => typeof l.modelVbmd === 'number')).toBe(true);
      expect(r.timingsMs.model).toBeGreaterThan(0);
      expect(() => vbmdReport.parse(r)).not.toThrow();
      const device = buildDevice(r, {});
      const sha = device.version?.find((v) => v.type?.coding?.[0]?.code === MODEL_SHA256_CODE.code);
      expect(sha?.value).toBe(committed.sha256);
    } finally {
      await runner.close();
    }
  });

  it('runs without a model when told to (VBMD_MODEL=false passes null)', async () => {
    const p = generatePhantom({ seed: 4243, levels: 'L1-L3', size: 128, pixelSpacingMm: 1.2, sliceThicknessMm: 2 });
    const r = await runAnalysis({ loaded: p.loaded }, { model: null });
    expect(r.model).toBeNull();
    expect(r.levels.every((l) => l.modelVbmd === undefined)).toBe(true);
  });

  it('fails before any work with the model error when the configured file is missing', async () => {
    const { sharedModelRunner } = await import('../../src/model/shared-runner.js');
    const err = await sharedModelRunner({ VBMD_MODEL: true, VBMD_MODEL_FILE: '/nonexistent/vbmd-x-1.0.0.onnx', VBMD_MODEL_THREADS: undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbmdError);
    expect((err as VbmdError).message).toMatch(/vbmd-x-1.0.0.onnx is missing/);
    expect(await sharedModelRunner({ VBMD_MODEL: false, VBMD_MODEL_FILE: undefined, VBMD_MODEL_THREADS: undefined })).toBeNull();
  });
});
