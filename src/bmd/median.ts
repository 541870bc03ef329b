/**
 * Median of the values (the mean of the middle two for an even count), NaN for none. Sorts a copy; the inputs
 * here are short (per-level heights, per-window spacings, a band's columns), never a volume.
 */
export function median(values: ArrayLike<number>): number {
  const s = Array.from(values).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
