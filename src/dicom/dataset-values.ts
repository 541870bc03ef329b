import type { DataSet } from 'dicom-parser';

/**
 * Typed reads of dicom-parser DataSet values (top level or a sequence item's dataset). Absent, empty or
 * unparsable values read as undefined, never NaN.
 */

export function str(ds: DataSet, tag: string): string | undefined {
  const v = ds.string(tag);
  return v === undefined || v === '' ? undefined : v;
}

/** A DS/IS value as a finite number. */
export function num(ds: DataSet, tag: string, index = 0): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const v = ds.floatString(tag, index);
  return v === undefined || !Number.isFinite(v) ? undefined : v;
}

export function int(ds: DataSet, tag: string): number | undefined {
  const v = num(ds, tag);
  return v === undefined ? undefined : Math.round(v);
}

/** The first `n` values of a multi-valued DS, all finite, or undefined. */
export function multi(ds: DataSet, tag: string, n: number): number[] | undefined {
  const s = ds.string(tag);
  if (!s) return undefined;
  const parts = s.split('\\').map((p) => Number(p.trim()));
  if (parts.length < n || parts.slice(0, n).some((x) => !Number.isFinite(x))) return undefined;
  return parts.slice(0, n);
}

export function us(ds: DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  return el && el.length >= 2 ? ds.uint16(tag) : undefined;
}

/** US or SS by PixelRepresentation (PS3.3 C.7.5.1.1.2: Pixel Padding Value has the pixels' signedness). */
export function usOrSs(ds: DataSet, tag: string, signed: boolean): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2) return undefined;
  return signed ? ds.int16(tag) : ds.uint16(tag);
}

/** The items of a sequence (SQ) element as datasets; empty when absent or not a sequence. */
export function items(ds: DataSet | undefined, tag: string): DataSet[] {
  const el = ds?.elements[tag];
  if (!el?.items) return [];
  const out: DataSet[] = [];
  for (const it of el.items) if (it.dataSet) out.push(it.dataSet);
  return out;
}

/** The first item of a sequence, if any. */
export function firstItem(ds: DataSet | undefined, tag: string): DataSet | undefined {
  return items(ds, tag)[0];
}
