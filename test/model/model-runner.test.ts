import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLASS_ORDER, PATCH_VOXELS } from '../../src/model/contract.js';
import { DEFAULT_MODEL_FILE, sha256Path, verifyModelFile } from '../../src/model/model-file.js';
import { ModelRunner } from '../../src/model/model-runner.js';
import { softmaxClasses } from '../../src/model/infer-levels.js';
import { VbmdError } from '../../src/util/errors.js';
import { config } from '../../src/config.js';
import { expectedFileFor, exporterReferenceInput, fixedNetworkInput, FIXED_VBMD_MG_CM3, ROI_SAMPLE_STRIDE, type ExpectedOutputs, type ExporterReference } from './fixed-input.js';

const V3 = PATCH_VOXELS ** 3;
/** The committed model (VBMD_MODEL_FILE only to try a candidate locally before committing it). */
const MODEL = config().VBMD_MODEL_FILE ?? DEFAULT_MODEL_FILE;

describe('committed model', () => {
  let runner: ModelRunner;
  let dir: string;
  beforeAll(async () => {
    runner = await ModelRunner.start({ file: MODEL, threads: 1 });
    dir = await mkdtemp(join(tmpdir(), 'vbmd-model-'));
  });
  afterAll(async () => {
    await runner?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads, and its sha256 matches the committed .sha256', async () => {
    const f = await verifyModelFile(MODEL);
    const committed = (await readFile(sha256Path(MODEL), 'utf8')).trim().slice(0, 64);
    expect(f.sha256).toBe(committed);
    expect(runner.model).toEqual({ name: f.name, version: f.version, sha256: committed });
  });

  it('gives the contract shapes for a batch', async () => {
    const out = await runner.infer(new Float32Array(2 * V3), 2);
    expect(out.n).toBe(2);
    expect(out.roiLogits.length).toBe(2 * V3);
    expect(out.vbmdMgCm3.length).toBe(2);
    expect(out.classLogits.length).toBe(2 * CLASS_ORDER.length);
    for (const v of [...out.vbmdMgCm3, ...out.classLogits]) expect(Number.isFinite(v)).toBe(true);
    const p = softmaxClasses(out.classLogits, 3);
    expect(p.normal + p.osteopenia + p.osteoporosis).toBeCloseTo(1, 6);
  });

  it('gives the committed outputs for the fixed input (1e-3)', async () => {
    const file = expectedFileFor(runner.model.name, runner.model.version);
    // A new model needs its fixture: npx tsx test/model/regenerate-expected.ts (documented in that file).
    expect(existsSync(file), `${file} is missing: run npx tsx test/model/regenerate-expected.ts`).toBe(true);
    const e = JSON.parse(await readFile(file, 'utf8')) as ExpectedOutputs;
    expect(e.model.sha256, 'fixture was made for other weights: regenerate it').toBe(runner.model.sha256);
    const out = await runner.infer(fixedNetworkInput(), FIXED_VBMD_MG_CM3.length);
    out.vbmdMgCm3.forEach((v, i) => expect(Math.abs(v - e.vbmdMgCm3[i])).toBeLessThan(1e-3));
    out.classLogits.forEach((v, i) => expect(Math.abs(v - e.classLogits[i])).toBeLessThan(1e-3));
    let worst = 0;
    e.roiLogitsSampled.forEach((v, k) => (worst = Math.max(worst, Math.abs(out.roiLogits[k * ROI_SAMPLE_STRIDE] - v))));
    expect(worst).toBeLessThan(1e-3);
    let pos = 0;
    for (const v of out.roiLogits) if (v > 0) pos++;
    // Logits within 1e-3 of 0 may flip sides; a handful at most.
    expect(Math.abs(pos - e.roiPositiveVoxels)).toBeLessThanOrEqual(Math.ceil(out.roiLogits.length * 1e-4));
  });

  it('matches the exporter\'s torch outputs on its reference case (onnxruntime = torch, 1e-3)', async () => {
    const refFile = MODEL.replace(/\.onnx$/, '.reference.json');
    expect(existsSync(refFile), `${refFile} (written by models/train/export.py) is missing`).toBe(true);
    const ref = JSON.parse(await readFile(refFile, 'utf8')) as ExporterReference;
    const out = await runner.infer(exporterReferenceInput(), 1);
    expect(Math.abs(out.vbmdMgCm3[0] - ref.vbmd)).toBeLessThan(1e-3);
    out.classLogits.forEach((v, i) => expect(Math.abs(v - ref.class_logits[i])).toBeLessThan(1e-3));
    // Centre voxel [0,0,16,16,16].
    expect(Math.abs(out.roiLogits[16 * 32 * 32 + 16 * 32 + 16] - ref.roi_logits_center)).toBeLessThan(1e-3);
    let sum = 0;
    let pos = 0;
    for (const v of out.roiLogits) {
      sum += v;
      if (v >= 0) pos++;
    }
    // A sum of 32768 float32 logits in another order: 1e-3 per voxel on average at most.
    expect(Math.abs(sum - ref.roi_logits_sum)).toBeLessThan(1e-3 * out.roiLogits.length);
    expect(Math.abs(pos - ref.roi_voxels_p_ge_0_5)).toBeLessThanOrEqual(3);
  });

  it('refuses a missing model file with a VbmdError naming it', async () => {
    const missing = join(dir, 'vbmd-none-1.0.0.onnx');
    const err = await ModelRunner.start({ file: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbmdError);
    expect((err as VbmdError).code).toBe('model');
    expect((err as VbmdError).message).toContain(missing);
    expect((err as VbmdError).message).toMatch(/missing/);
  });

  it('refuses a corrupt model file (one byte changed) before onnxruntime sees it', async () => {
    const f = await verifyModelFile(MODEL);
    const copy = join(dir, `${f.name}-${f.version}.onnx`);
    await copyFile(MODEL, copy);
    await copyFile(sha256Path(MODEL), sha256Path(copy));
    const bytes = await readFile(copy);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(copy, bytes);
    const err = await ModelRunner.start({ file: copy }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbmdError);
    expect((err as VbmdError).message).toMatch(/corrupt/);
    expect((err as VbmdError).message).toContain(copy);
  });

  it('refuses a file that is not an ONNX model even when its checksum matches', async () => {
    const bogus = join(dir, 'vbmd-bogus-1.0.0.onnx');
    await writeFile(bogus, 'version https://git-lfs.github.com/spec/v1\n');
    const { createHash } = await import('node:crypto');
    await writeFile(sha256Path(bogus), `${createHash('sha256').update(await readFile(bogus)).digest('hex')}  vbmd-bogus-1.0.0.onnx\n`);
    const err = await ModelRunner.start({ file: bogus }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbmdError);
    expect((err as VbmdError).message).toMatch(/could not load/);
  });

  it('turns a worker that dies into a VbmdError for the runs it held, and recovers on the next run', async () => {
    // The worker ends between runs (a thread cannot be killed inside onnxruntime's native code without taking
    // the process down): the run sent before completes, the one sent after fails cleanly.
    const before = runner.infer(new Float32Array(V3), 1);
    runner.endWorkerAfterQueuedRuns(3);
    const after = runner.infer(new Float32Array(V3), 1);
    expect((await before).vbmdMgCm3.length).toBe(1);
    const err = await after.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(VbmdError);
    expect((err as VbmdError).code).toBe('model');
    expect((err as VbmdError).message).toMatch(/worker exited with code 3/);
    const again = await runner.infer(new Float32Array(V3), 1);
    expect(again.vbmdMgCm3.length).toBe(1);
  });

  it('keeps the event loop free while the worker infers', async () => {
    // Functional check, not a timing target (test/bench/model.bench.ts measures): timers keep firing during
    // a batch that takes the worker far longer than one timer period.
    const h = monitorEventLoopDelay({ resolution: 5 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    h.enable();
    const t0 = performance.now();
    await runner.infer(new Float32Array(16 * V3), 16);
    const ms = performance.now() - t0;
    h.disable();
    clearInterval(timer);
    const maxLagMs = h.max / 1e6;
    // Were session.run on this thread, there would be ~0 ticks and a lag of the whole run.
    expect(ticks).toBeGreaterThan(Math.min(10, ms / 50));
    expect(maxLagMs).toBeLessThan(Math.max(250, ms / 2));
  });
});
