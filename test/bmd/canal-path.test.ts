import { describe, expect, it } from 'vitest';
import { continuousRun, type CanalCandidate } from '../../src/bmd/spine/canal-path.js';
import type { WorkingGrid } from '../../src/bmd/spine/working-grid.js';

/** A 3 mm working grid: only its spacing matters here. */
const grid = { spacingMm: [3, 3, 3] } as unknown as WorkingGrid;
const at = (x: number, y: number): CanalCandidate => ({ x, y, front: y, bodyFront: y - 8, score: 8 });

/** Slices 0..n-1 with one candidate each (x, y from `pos`), none where `pos` gives null. */
function track(n: number, pos: (z: number) => [number, number] | null): { cands: CanalCandidate[][]; choice: Int32Array } {
  const cands = Array.from({ length: n }, (_, z) => {
    const p = pos(z);
    return p ? [at(p[0], p[1])] : [];
  });
  return { cands, choice: Int32Array.from(cands, (c) => (c.length ? 0 : -1)) };
}

describe('the canal run across slices without a candidate', () => {
  it('carries the canal across 18 mm without a candidate when it continues in line (the upper thoracic laminae)', () => {
    const { cands, choice } = track(40, (z) => (z >= 20 && z < 26 ? null : [50, 60 - z * 0.1]));
    expect(continuousRun(choice, cands, grid)).toEqual({ a: 0, b: 39 });
  });

  it('does not cross such a gap to a structure 24 mm away in the slice', () => {
    const { cands, choice } = track(40, (z) => (z >= 20 && z < 26 ? null : z < 20 ? [50, 60] : [50, 68]));
    const run = continuousRun(choice, cands, grid);
    expect(run).toEqual({ a: 0, b: 19 });
  });

  it('does not cross 30 mm without a candidate, however in line', () => {
    const { cands, choice } = track(50, (z) => (z >= 20 && z < 30 ? null : [50, 60]));
    const run = continuousRun(choice, cands, grid);
    expect(run.b - run.a).toBe(19);
  });
});
