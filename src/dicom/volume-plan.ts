import { VbmdError } from '../util/errors.js';
import type { DicomSliceHeader } from './parse.js';
import { transferSyntaxInfo } from './codecs/transfer-syntax.js';
import { substitutedUidWarning } from './substitute-uids.js';
import type { Vec3, VolumeMeta } from '../imaging/volume.js';
import {
  checkDuplicates,
  checkInterleaved,
  checkNoShear,
  checkSameOrientation,
  checkSamePixelSpacing,
  checkSameSize,
  dot,
  fmt,
  median,
  where,
  type Placed,
} from './stack-geometry.js';

export interface AssembleOptions {
  /** What to do with single missing slices inside the stack: fill by linear interpolation (with a warning) or reject. */
  missingSlices?: 'interpolate' | 'reject';
  /** Volume kind recorded in meta; default 'dicom'. */
  kind?: VolumeMeta['kind'];
  /** Carried into meta.skippedSeries (series choice happens before assembly). */
  skippedSeries?: VolumeMeta['skippedSeries'];
}

/** Relative slice-spacing deviation accepted silently (rounding of ImagePositionPatient). */
const SPACING_SILENT_REL = 0.02;
/** Relative deviation accepted with a warning; beyond it the stack is not a regular grid. */
const SPACING_WARN_REL = 0.1;
/** More missing slices than this fraction is not a gap to patch but a broken series. */
const MAX_MISSING_FRACTION = 0.05;

/** Where each slice goes and what the volume will be: everything assembly decides from headers alone. */
export interface VolumePlan<H extends DicomSliceHeader = DicomSliceHeader> {
  /** Slices sorted along the normal. */
  order: H[];
  /** Slice index in the volume of order[k] (gaps leave indices out). */
  gridIndex: number[];
  /** Runs of missing slices after order[after], filled by interpolation. */
  gaps: { after: number; missing: number }[];
  dims: Vec3;
  spacingMm: Vec3;
  originMm: Vec3;
  direction: [Vec3, Vec3, Vec3];
  meta: VolumeMeta;
}

/**
 * The geometry half of assembly, from headers only, so a folder source can place each slice into the
 * volume as soon as it is decoded (no list of decoded slices held in memory).
 */
export function planVolume<H extends DicomSliceHeader>(slices: H[], source: string, options: AssembleOptions = {}): VolumePlan<H> {
  if (slices.length === 0) throw new VbmdError('no-series', `${source}: no image slices to assemble.`);
  const warnings: string[] = [];
  const first = slices[0];
  const seriesLabel = `series ${first.seriesInstanceUid}${first.seriesDescription ? ` ("${first.seriesDescription}")` : ''} in ${source}`;
  if (slices.length < 2) {
    throw new VbmdError('bad-input', `${seriesLabel} has a single slice; a volume needs a stack of axial slices.`);
  }

  checkSameSize(slices, seriesLabel);
  const pixelSpacing = checkSamePixelSpacing(slices, seriesLabel);
  const { row, col, normal } = checkSameOrientation(slices, seriesLabel);

  // Sort by position along the normal (one projection per slice, sort on numbers).
  const order: Placed<H>[] = slices.map((s) => ({ s, z: dot(s.imagePositionMm!, normal) }));
  order.sort((a, b) => a.z - b.z);
  checkDuplicates(order, seriesLabel);
  checkInterleaved(order, seriesLabel);

  // Spacing from positions: the median step is the grid; deviations are gaps, jitter or broken stacks.
  const steps: number[] = [];
  for (let k = 1; k < order.length; k++) steps.push(order[k].z - order[k - 1].z);
  const spacing = median(steps);
  if (!(spacing > 1e-3)) throw new VbmdError('bad-input', `${seriesLabel}: slice positions do not advance along the slice normal.`);

  const tilt = checkNoShear(slices, order, normal, pixelSpacing, seriesLabel);
  if (tilt !== undefined) warnings.push(tilt);
  const { gridIndex, gaps } = placeOnGrid(order, steps, spacing, seriesLabel, options, warnings);

  return {
    order: order.map((o) => o.s),
    gridIndex,
    gaps,
    dims: [first.columns, first.rows, gridIndex[gridIndex.length - 1] + 1],
    // PixelSpacing is [between rows, between columns]: i (along a row) steps by the column spacing.
    spacingMm: [pixelSpacing[1], pixelSpacing[0], spacing],
    originMm: [...order[0].s.imagePositionMm!] as Vec3,
    direction: [row, col, normal],
    meta: volumeMeta(slices, source, options, warnings),
  };
}

/**
 * Each slice's index on a regular grid with the median spacing. Rejects irregular spacing, and gaps of
 * more than one slice or too many missing (or any, with missingSlices 'reject'); warns of jitter and of
 * the single slices that will be interpolated.
 */
function placeOnGrid(
  order: Placed[],
  steps: number[],
  spacing: number,
  seriesLabel: string,
  options: AssembleOptions,
  warnings: string[],
): Pick<VolumePlan, 'gridIndex' | 'gaps'> {
  const gridIndex: number[] = [0];
  const gaps: { after: number; missing: number }[] = [];
  let maxDev = 0;
  for (let k = 1; k < order.length; k++) {
    const step = steps[k - 1];
    const m = Math.round(step / spacing);
    const dev = Math.abs(step - m * spacing);
    if (m < 1 || dev > SPACING_WARN_REL * spacing) {
      throw new VbmdError(
        'bad-input',
        `${seriesLabel} has irregular slice spacing: ${fmt(step)} mm between ${where(order[k - 1].s, order[k - 1].z)} and ${where(order[k].s, order[k].z)}, where the series spacing is ${fmt(spacing)} mm.`,
      );
    }
    maxDev = Math.max(maxDev, dev / m);
    if (m > 1) gaps.push({ after: k - 1, missing: m - 1 });
    gridIndex.push(gridIndex[k - 1] + m);
  }
  if (maxDev > SPACING_SILENT_REL * spacing) {
    warnings.push(`Slice spacing varies by up to ${fmt(maxDev)} mm around ${fmt(spacing)} mm; slices were placed on a regular ${fmt(spacing)} mm grid.`);
  }
  const totalMissing = gaps.reduce((a, g) => a + g.missing, 0);
  if (gaps.length > 0) {
    const list = gaps
      .slice(0, 3)
      .map((g) => `${g.missing} between ${where(order[g.after].s, order[g.after].z)} and ${where(order[g.after + 1].s, order[g.after + 1].z)}`)
      .join('; ');
    const what = `${seriesLabel} is missing ${totalMissing} slice${totalMissing > 1 ? 's' : ''} (${list}${gaps.length > 3 ? '; ...' : ''})`;
    const tooMany = gaps.some((g) => g.missing > 1) || totalMissing > Math.max(1, MAX_MISSING_FRACTION * (order.length + totalMissing));
    if (options.missingSlices === 'reject' || tooMany) {
      throw new VbmdError('bad-input', `${what}; send the complete series.`, { missingSlices: totalMissing });
    }
    warnings.push(`${what}; each was filled by linear interpolation of its neighbours.`);
  }
  return { gridIndex, gaps };
}

/** Volume metadata from the first slice, with warnings about lossy pixel data and substituted UIDs added. */
function volumeMeta(slices: DicomSliceHeader[], source: string, options: AssembleOptions, warnings: string[]): VolumeMeta {
  const first = slices[0];
  const lossy = [...new Set(slices.map((s) => s.transferSyntaxUid))].map(transferSyntaxInfo).filter((t) => t.lossy);
  if (lossy.length > 0) {
    warnings.push(`Pixel data were lossy-compressed (${lossy.map((t) => t.name).join(', ')}); HU values are approximate.`);
  }

  const substituted = new Set(slices.flatMap((s) => s.substitutedUids ?? []));
  if (substituted.size > 0) warnings.push(substitutedUidWarning(substituted));

  const meta: VolumeMeta = {
    kind: options.kind ?? 'dicom',
    source,
    studyInstanceUid: first.studyInstanceUid,
    seriesInstanceUid: first.seriesInstanceUid,
    seriesDescription: first.seriesDescription,
    patientId: first.patientId,
    accessionNumber: first.accessionNumber,
    acquisitionDateTime: acquisitionIso(slices),
    manufacturer: first.manufacturer,
    manufacturerModelName: first.manufacturerModelName,
    kvp: first.kvp,
    contrastAgent: contrastAgent(slices),
    skippedSeries: options.skippedSeries,
    warnings,
  };
  for (const k of Object.keys(meta) as (keyof VolumeMeta)[]) if (meta[k] === undefined) delete meta[k];
  return meta;
}

function acquisitionIso(slices: DicomSliceHeader[]): string | undefined {
  let best: string | undefined;
  for (const s of slices) {
    const date = s.acquisitionDate ?? s.studyDate;
    if (!date || !/^\d{8}$/.test(date.trim())) continue;
    const t = (s.acquisitionTime ?? '').trim().replace(/:/g, '');
    const key = `${date.trim()}${t.padEnd(6, '0').slice(0, 6)}`;
    if (!best || key < best) best = key;
  }
  if (!best) return undefined;
  const withTime = slices.some((s) => s.acquisitionTime);
  const d = `${best.slice(0, 4)}-${best.slice(4, 6)}-${best.slice(6, 8)}`;
  return withTime ? `${d}T${best.slice(8, 10)}:${best.slice(10, 12)}:${best.slice(12, 14)}` : d;
}

/** (0018,0010) present and not a "none" spelling. */
function contrastAgent(slices: DicomSliceHeader[]): string | undefined {
  for (const s of slices) {
    const a = s.contrastAgent?.trim();
    if (a && !/^(none|no|n|0|-)$/i.test(a)) return a;
  }
  return undefined;
}
