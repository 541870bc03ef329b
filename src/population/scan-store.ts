/**
 * The per-scan numbers of the cohort (aggregate.ts) for all patients together: fixed-size chunks of a
 * Float64Array (FIELDS numbers per scan) and an Int32Array linking each scan to the same patient's previous
 * one. About 44 bytes a scan, no per-patient arrays (whose headers and growth slack cost more than the
 * numbers), and no large copy when it grows: a new chunk is added.
 */
export const FIELDS = 5;
const CHUNK = 1 << 16;

export class ScanStore {
  private readonly values: Float64Array[] = [];
  private readonly previous: Int32Array[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Appends a scan after `head` (the patient's newest index, -1 for none); answers its index. */
  append(head: number, fields: readonly number[]): number {
    const i = this.count++;
    const c = i >>> 16;
    if (c === this.values.length) {
      this.values.push(new Float64Array(CHUNK * FIELDS));
      this.previous.push(new Int32Array(CHUNK));
    }
    this.values[c]!.set(fields, (i & (CHUNK - 1)) * FIELDS);
    this.previous[c]![i & (CHUNK - 1)] = head;
    return i;
  }

  get(i: number, field: number): number {
    return this.values[i >>> 16]![(i & (CHUNK - 1)) * FIELDS + field]!;
  }

  set(i: number, fields: readonly number[]): void {
    this.values[i >>> 16]!.set(fields, (i & (CHUNK - 1)) * FIELDS);
  }

  /** The same patient's scan added before `i`, -1 at the end: `for (let i = head; i >= 0; i = store.prev(i))`. */
  prev(i: number): number {
    return this.previous[i >>> 16]![i & (CHUNK - 1)]!;
  }
}
