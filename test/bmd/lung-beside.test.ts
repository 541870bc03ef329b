import { describe, expect, it } from 'vitest';
import { lungBeside } from '../../src/bmd/spine/lung-beside.js';
import type { StraightSpine } from '../../src/bmd/spine/straighten.js';
import { straightBlock } from '../support/straight-block.js';

/**
 * A straightened spine at 1 mm (u -40..60, v -80..80 mm): soft tissue (40 HU) with a 30 mm body at the centre
 * line; `lungFromS` on, the paravertebral region 20-80 mm to both sides is lung (-850 HU), as below the apices.
 */
function column(lungFromS: number): StraightSpine {
  return straightBlock(120, (s, uMm, vMm) => {
    if (Math.hypot(uMm, vMm) <= 15) return 200;
    if (s >= lungFromS && Math.abs(vMm) >= 20 && uMm >= -35 && uMm <= 20) return -850;
    return undefined;
  });
}

describe('lung beside a level', () => {
  it('tells a thoracic level (lung in the paravertebral gutters) from C7 (neck muscles)', () => {
    const st = column(60);
    expect(lungBeside(st, 70, 95)).toBe(true);
    expect(lungBeside(st, 20, 45)).toBe(false);
  });

  it('says nothing where the field of view cuts most of the region off', () => {
    const st = column(0);
    // A narrow field: everything over 30 mm from the centre line outside the scan.
    for (let s = 0; s < st.ns; s++) for (let u = 0; u < st.nu; u++) for (let v = 0; v < st.nv; v++) if (Math.abs(v - 80) > 30) st.hu[v + st.nv * (u + st.nu * s)] = NaN;
    expect(lungBeside(st, 70, 95)).toBeUndefined();
  });
});
