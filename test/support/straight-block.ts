import type { StraightSpine } from '../../src/bmd/spine/straighten.js';

/**
 * A synthetic straightened spine at 1 mm, u -40..60 mm (posterior positive) and v -80..80 mm (left positive),
 * `ns` samples along s: soft tissue (40 HU) wherever `paint(s, uMm, vMm)` returns undefined, its HU elsewhere.
 */
export function straightBlock(ns: number, paint: (s: number, uMm: number, vMm: number) => number | undefined): StraightSpine {
  const nu = 101;
  const nv = 161;
  const hu = new Float32Array(ns * nu * nv);
  for (let s = 0; s < ns; s++) {
    for (let u = 0; u < nu; u++) {
      for (let v = 0; v < nv; v++) hu[v + nv * (u + nu * s)] = paint(s, u - 40, v - 80) ?? 40;
    }
  }
  return { hu, ns, nu, nv, uMinMm: -40, vMinMm: -80, stepMm: 1 };
}
