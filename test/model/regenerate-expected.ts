/**
 * Regenerates the known-output fixture of test/model/model-runner.test.ts for the committed model. Run after a
 * new model is committed (it writes test/model/fixtures/expected-outputs-<name>-<version>.json):
 *   npx tsx test/model/regenerate-expected.ts [model.onnx]
 * Review the diff: a new file for a new model version is expected; a changed file for the same version is not.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DEFAULT_MODEL_FILE } from '../../src/model/model-file.js';
import { ModelRunner } from '../../src/model/model-runner.js';
import { expectedFileFor, fixedNetworkInput, FIXED_VBMD_MG_CM3, ROI_SAMPLE_STRIDE, type ExpectedOutputs } from './fixed-input.js';

const runner = await ModelRunner.start({ file: process.argv[2] ?? DEFAULT_MODEL_FILE });
try {
  const out = await runner.infer(fixedNetworkInput(), FIXED_VBMD_MG_CM3.length);
  const sampled: number[] = [];
  for (let i = 0; i < out.roiLogits.length; i += ROI_SAMPLE_STRIDE) sampled.push(round(out.roiLogits[i]));
  let pos = 0;
  for (const v of out.roiLogits) if (v > 0) pos++;
  const e: ExpectedOutputs = {
    model: runner.model,
    vbmdMgCm3: [...out.vbmdMgCm3].map(round),
    classLogits: [...out.classLogits].map(round),
    roiLogitsSampled: sampled,
    roiPositiveVoxels: pos,
  };
  const file = expectedFileFor(runner.model.name, runner.model.version);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(e) + '\n');
  process.stdout.write(`wrote ${file}\n`);
} finally {
  await runner.close();
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
