/**
 * Moves equally sized slabs (slices) of `data` in place so that the slab that arrived at position `a` ends at
 * position `target[a]` (a permutation of 0..n-1). Cycle-following with one slab of scratch memory, so a
 * volume assembled in arrival order is sorted without a second volume-sized buffer.
 */
export function permuteSlabsInPlace(data: Float32Array | Int16Array, slabLength: number, target: readonly number[]): void {
  const n = target.length;
  if (data.length < n * slabLength) throw new RangeError(`permuteSlabsInPlace: ${n} slabs of ${slabLength} do not fit in ${data.length}`);
  const inverse = new Int32Array(n).fill(-1);
  for (let a = 0; a < n; a++) {
    const t = target[a];
    if (!Number.isInteger(t) || t < 0 || t >= n || inverse[t] !== -1) throw new RangeError('permuteSlabsInPlace: target is not a permutation');
    inverse[t] = a;
  }
  const done = new Uint8Array(n);
  const scratch = data.slice(0, slabLength); // same element type; overwritten before use
  for (let start = 0; start < n; start++) {
    if (done[start] || inverse[start] === start) {
      done[start] = 1;
      continue;
    }
    // Slot `start` must receive the slab now at inverse[start]; follow the chain until it closes.
    scratch.set(data.subarray(start * slabLength, (start + 1) * slabLength));
    let cur = start;
    for (;;) {
      const src = inverse[cur];
      done[cur] = 1;
      if (src === start) {
        data.set(scratch, cur * slabLength);
        break;
      }
      data.copyWithin(cur * slabLength, src * slabLength, (src + 1) * slabLength);
      cur = src;
    }
  }
}
