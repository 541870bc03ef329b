import { PATCH_VOXELS } from '../../src/model/contract.js';
import { densityToNetworkInput } from '../../src/model/patch.js';

/**
 * A fixed, deterministic network input for the known-output test: a vertebra-like density patch from a formula
 * (no file, no RNG): an elliptic trabecular body of `vbmdMgCm3` with a 2-voxel cortical shell of 600 mg/cm3,
 * soft tissue (40) around it and air (-800) in the posterior-left corner, passed through the contract's
 * scaling (densityToNetworkInput). The same formula in any checkout gives bit-identical floats.
 */
export function fixedDensityPatch(vbmdMgCm3: number): Float32Array {
  const n = PATCH_VOXELS;
  const c = (n - 1) / 2;
  const out = new Float32Array(n * n * n);
  let q = 0;
  for (let d = 0; d < n; d++) {
    for (let h = 0; h < n; h++) {
      for (let w = 0; w < n; w++, q++) {
        // Body: ellipsoid semi-axes (w 13, h 10, d 9 voxels at 1.5 mm = ~39 x 30 x 27 mm).
        const r = Math.sqrt(((w - c) / 13) ** 2 + ((h - c) / 10) ** 2 + ((d - c) / 9) ** 2);
        let v = 40;
        if (r < 0.8) v = vbmdMgCm3;
        else if (r < 1) v = 600;
        else if (h > 26 && w > 26) v = -800;
        out[q] = v;
      }
    }
  }
  return out;
}

/** Batch of the fixed inputs used by the test (three densities across the ACR classes). */
export const FIXED_VBMD_MG_CM3 = [60, 100, 160] as const;

export function fixedNetworkInput(): Float32Array {
  const v = PATCH_VOXELS ** 3;
  const out = new Float32Array(FIXED_VBMD_MG_CM3.length * v);
  FIXED_VBMD_MG_CM3.forEach((b, i) => densityToNetworkInput(fixedDensityPatch(b), out.subarray(i * v, (i + 1) * v)));
  return out;
}

/** Every 97th ROI logit (a prime stride, so it samples all of d, h and w) keeps the expected file small. */
export const ROI_SAMPLE_STRIDE = 97;

export interface ExpectedOutputs {
  model: { name: string; version: string; sha256: string };
  vbmdMgCm3: number[];
  classLogits: number[];
  roiLogitsSampled: number[];
  roiPositiveVoxels: number;
}

export function expectedFileFor(name: string, version: string): string {
  return new URL(`./fixtures/expected-outputs-${name}-${version}.json`, import.meta.url).pathname;
}

/**
 * The exporter's reference input (models/train/export.py, "Reference case"), the same floats numpy makes:
 * float32 arithmetic emulated with Math.fround after every operation (each op on float32 values rounded once
 * from double equals the float32 op). Its torch outputs are in models/<name>-<version>.reference.json.
 */
export function exporterReferenceInput(): Float32Array {
  const n = PATCH_VOXELS;
  const f = Math.fround;
  const out = new Float32Array(n * n * n);
  const term = (g: number, semi: number): number => {
    const t = f(f(g - 15.5) / semi);
    return f(t * t);
  };
  let q = 0;
  for (let d = 0; d < n; d++) {
    for (let h = 0; h < n; h++) {
      for (let w = 0; w < n; w++, q++) {
        const r2 = f(f(term(d, 9) + term(h, 10)) + term(w, 13));
        const dens = (r2 < 1 ? 150 : 0) + (r2 >= 1 && r2 < 1.3 ? 700 : 0);
        out[q] = f(Math.min(1200, Math.max(-200, dens)) / 300);
      }
    }
  }
  return out;
}

export interface ExporterReference {
  vbmd: number;
  class_logits: number[];
  roi_logits_sum: number;
  roi_logits_center: number;
  roi_voxels_p_ge_0_5: number;
}
