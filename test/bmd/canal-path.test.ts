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

  it('drops one slice whose candidate lies off the canal that the slices either side continue', () => {
    // Slices without a candidate either side of one candidate 21 mm behind the canal (hard phantom 22017 with its
    // pedicles at the bodies' cranial parts): a miss, not the canal leaving; left in, it cut the run in two.
    // Here the canal is in line across the 18 mm around it, so the run goes on; with the candidate left in, the run
    // broke at it and could not be carried back past it.
    const none = (z: number): boolean => z >= 15 && z <= 20 && z !== 17;
    const { cands, choice } = track(40, (z) => (none(z) ? null : z === 17 ? [50, 67] : [50, 60]));
    expect(continuousRun(choice, cands, grid)).toEqual({ a: 0, b: 39 });
    expect(choice[17]).toBe(-1);
    // Where the slices after it continue the off-canal candidate, it is the path moving, and stays a break.
    const moved = track(40, (z) => (none(z) ? null : z >= 17 ? [50, 67] : [50, 60]));
    expect(continuousRun(moved.choice, moved.cands, grid)).toEqual({ a: 17, b: 39 });
  });

  it('does not cross 30 mm without a candidate, however in line', () => {
    const { cands, choice } = track(50, (z) => (z >= 20 && z < 30 ? null : [50, 60]));
    const run = continuousRun(choice, cands, grid);
    expect(run.b - run.a).toBe(19);
  });

  it('drops a stretch of slices in front of the canal and carries the canal across it (a steeply tilted level)', () => {
    // Hard phantom 22001 (L1 tilted 33 degrees): six slices read a canal 39 mm in front of it, where the canal itself,
    // cut obliquely with no body right in front, gave no candidate; the canal before and after is in line, 27 mm apart.
    const aside = (z: number): boolean => z >= 21 && z <= 26;
    const { cands, choice } = track(50, (z) => (z === 20 || z === 27 ? null : aside(z) ? [50, 47] : [50, 60 + (z > 27 ? 1 : 0)]));
    expect(continuousRun(choice, cands, grid)).toEqual({ a: 0, b: 49 });
    for (let z = 21; z <= 26; z++) expect(choice[z]).toBe(-1);
    // Without the stretch in between, the same 27 mm without a candidate is not crossed.
    const bare = track(50, (z) => (z >= 20 && z <= 27 ? null : [50, 60 + (z > 27 ? 1 : 0)]));
    const bareRun = continuousRun(bare.choice, bare.cands, grid);
    expect(bareRun.b - bareRun.a).toBe(21);
    // Nor is it where the canal after the stretch lies 24 mm from the canal before it: that is the path moving.
    const moved = track(50, (z) => (z === 20 || z === 27 ? null : aside(z) ? [50, 47] : z < 20 ? [50, 60] : [50, 68]));
    expect(continuousRun(moved.choice, moved.cands, grid)).toEqual({ a: 28, b: 49 });
    // A stretch beside the line, in line with it front to back, is the canal read across its width: it stays.
    const beside = track(50, (z) => (z === 20 || z === 27 ? null : aside(z) ? [45, 60] : [50, 60 + (z > 27 ? 1 : 0)]));
    continuousRun(beside.choice, beside.cands, grid);
    expect(beside.choice[23]).toBe(0);
  });
  it('ends a run where the canal\'s front (the bodies\' posterior wall) steps in its last slices, and nowhere else', () => {
    // Hard phantom 20053: at the scan's bottom edge three slices took a gap whose front lay 15 mm behind the canal's
    // and whose centre 9 mm behind it; the track's end, and T11's centre, followed it. The canal itself was there too.
    const canal = { ...at(50, 60), front: 58 };
    const off = { ...at(50, 63), front: 63 };
    const cands = Array.from({ length: 40 }, (_, z): CanalCandidate[] => (z < 3 ? [off, canal] : [canal]));
    const choice = Int32Array.from(cands, () => 0);
    expect(continuousRun(choice, cands, grid)).toEqual({ a: 0, b: 39 });
    expect([choice[0], choice[1], choice[2]]).toEqual([1, 1, 1]);
    // The same step 60 mm into the run is the wall stepping back (the sacral promontory): the run goes on through it.
    const inner = Array.from({ length: 40 }, (_, z): CanalCandidate[] => [z < 20 ? off : canal]);
    const innerChoice = Int32Array.from(inner, () => 0);
    expect(continuousRun(innerChoice, inner, grid)).toEqual({ a: 0, b: 39 });
  });
});
