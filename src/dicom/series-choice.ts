import { VbmdError } from '../util/errors.js';
import { sharpKernel } from './kernel.js';
import type { SeriesCandidate } from './source.js';

/** A candidate plus what a source may know from headers (folder scan) beyond QIDO-RS metadata. */
export interface SeriesChoiceCandidate extends SeriesCandidate {
  /** Plane of the slices from ImageOrientationPatient, when known. */
  orientation?: 'axial' | 'coronal' | 'sagittal' | 'oblique';
  /** Extent of the stack along the slice normal (mm), when known from positions. */
  extentMm?: number;
  /** SOP Class UID of the images, when known. */
  sopClassUid?: string;
}

export interface SeriesChoiceOptions {
  /** Fewer slices than this cannot hold two vertebrae; default 10. */
  minSlices?: number;
  /** Preferred maximum slice thickness (DESIGN.md: thinnest <= 3 mm); thicker series are a fallback. */
  maxPreferredThicknessMm?: number;
}

export interface SkippedSeries {
  seriesInstanceUid: string;
  reason: string;
}

export interface SeriesChoice<C extends SeriesChoiceCandidate = SeriesChoiceCandidate> {
  chosen: C;
  skipped: SkippedSeries[];
  warnings: string[];
}

/** Series descriptions scanners give their scout images (GE "Scout", Siemens "Topogram", Philips "Surview"). */
const LOCALIZER_DESCRIPTION = /\b(scout|topogram|localizer|localiser|surview|scanogram|pilot)\b/i;
/** CT Image Storage, Enhanced CT and Legacy Converted Enhanced CT Image Storage (PS3.4 B.5). */
const CT_IMAGE_CLASSES = new Set(['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.2.1', '1.2.840.10008.5.1.4.1.1.2.2']);
const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
/** Coverage within this fraction counts as equal, so a thinner series wins. */
const COVERAGE_TIE = 0.1;

/**
 * DESIGN.md "Series choice": CT, ORIGINAL/PRIMARY, axial; skip localizers, derived/secondary series,
 * other modalities and series too short to hold vertebrae; among the rest prefer slices <= 3 mm, then the
 * best coverage, then a soft-tissue over a sharp (lung, bone) reconstruction kernel (src/dicom/kernel.ts),
 * then the thinnest. Every other series is returned with the reason it was not chosen.
 * With nothing usable, rejects with a VbmdError that lists what was found and why each was unusable.
 */
export function chooseSeries<C extends SeriesChoiceCandidate>(
  candidates: C[],
  source: string,
  options: SeriesChoiceOptions = {},
): SeriesChoice<C> {
  const minSlices = options.minSlices ?? 10;
  const maxThin = options.maxPreferredThicknessMm ?? 3;
  const skipped: SkippedSeries[] = [];
  const usable: C[] = [];
  for (const c of candidates) {
    const reason = unusableReason(c, minSlices);
    if (reason) skipped.push({ seriesInstanceUid: c.seriesInstanceUid, reason });
    else usable.push(c);
  }
  if (usable.length === 0) {
    if (candidates.length === 0) throw new VbmdError('no-series', `No DICOM series found in ${source}.`);
    throw new VbmdError('no-series', `No usable axial CT series in ${source}: ${summarize(candidates, skipped)}.`, { skipped });
  }

  const coverage = (c: C): number => c.extentMm ?? planes(c) * (c.sliceThicknessMm ?? 1);
  const thin = (c: C): boolean => c.sliceThicknessMm === undefined || c.sliceThicknessMm <= maxThin + 1e-6;
  const sharp = (c: C): boolean => sharpKernel(c.convolutionKernel, c.seriesDescription);
  const ranked = [...usable].sort((a, b) => {
    if (thin(a) !== thin(b)) return thin(a) ? -1 : 1;
    const ca = coverage(a);
    const cb = coverage(b);
    if (Math.abs(ca - cb) > COVERAGE_TIE * Math.max(ca, cb)) return cb - ca;
    if (sharp(a) !== sharp(b)) return sharp(a) ? 1 : -1;
    const ta = a.sliceThicknessMm ?? Infinity;
    const tb = b.sliceThicknessMm ?? Infinity;
    if (ta !== tb) return ta - tb;
    return planes(b) - planes(a);
  });
  const chosen = ranked[0];
  for (const c of ranked.slice(1)) {
    let reason: string;
    if (thin(chosen) && !thin(c)) reason = `slices thicker (${c.sliceThicknessMm} mm) than ${maxThin} mm`;
    else if (coverage(c) < (1 - COVERAGE_TIE) * coverage(chosen)) reason = `covers less (${Math.round(coverage(c))} mm vs ${Math.round(coverage(chosen))} mm)`;
    else if (sharp(c) && !sharp(chosen)) reason = `sharp (lung or bone) reconstruction kernel${kernelOf(c)}; a soft-tissue reconstruction of the same coverage was chosen`;
    else if ((c.sliceThicknessMm ?? Infinity) > (chosen.sliceThicknessMm ?? Infinity)) reason = `thicker slices (${c.sliceThicknessMm} mm vs ${chosen.sliceThicknessMm} mm) with similar coverage`;
    else reason = `another series of similar thickness and coverage was chosen (${label(chosen)})`;
    skipped.push({ seriesInstanceUid: c.seriesInstanceUid, reason });
  }
  const warnings: string[] = [];
  if (sharp(chosen)) {
    warnings.push(
      `The series was reconstructed with a sharp (lung or bone) kernel${kernelOf(chosen)} and no soft-tissue reconstruction of it was found: its noise and edge enhancement shift trabecular HU, so vBMD is less accurate.`,
    );
  }
  if (!thin(chosen)) {
    warnings.push(`Only slices thicker than ${maxThin} mm were available (${chosen.sliceThicknessMm} mm); partial-volume effects lower the precision of vBMD.`);
  }
  return { chosen, skipped, warnings };
}

function unusableReason(c: SeriesChoiceCandidate, minSlices: number): string | undefined {
  const modality = c.modality?.toUpperCase();
  if (!modality) return 'no modality recorded, not known to be CT';
  if (modality !== 'CT') return `${modality}, not CT`;
  if (c.sopClassUid && !CT_IMAGE_CLASSES.has(c.sopClassUid)) {
    return c.sopClassUid === SECONDARY_CAPTURE ? 'secondary capture (screenshots), not CT images' : `not a CT image object (SOP class ${c.sopClassUid})`;
  }
  const it = (c.imageType ?? []).map((s) => s.toUpperCase());
  if (it.includes('LOCALIZER') || it.includes('SCOUT') || (c.seriesDescription && LOCALIZER_DESCRIPTION.test(c.seriesDescription))) {
    return 'localizer (scout/topogram), not a cross-sectional series';
  }
  // Image Type value 1 ORIGINAL/DERIVED, value 2 PRIMARY/SECONDARY (PS3.3 C.7.6.1.1.2).
  if (it[0] === 'DERIVED' || it[1] === 'SECONDARY') {
    return `derived/secondary images (${it.join('\\')}: reformat, MIP or processed), not the original acquisition`;
  }
  // CT Image Type value 3 is AXIAL or LOCALIZER (PS3.3 C.8.2.1.1.1); Enhanced CT's Image Flavor adds VOLUME
  // (C.8.16.1.3), whose plane the orientation check below decides. Anything else is not a plain stack.
  if (it.length >= 3 && it[2] !== 'AXIAL' && it[2] !== 'VOLUME') return `not axial (image type ${it.join('\\')})`;
  if (c.orientation && c.orientation !== 'axial') return `${c.orientation} slices, not axial`;
  const count = c.frameCount ?? c.instanceCount;
  if (count !== undefined && count < minSlices) {
    return `too few slices (${count}, need at least ${minSlices})`;
  }
  return undefined;
}

/** Image planes of a series: frames of multi-frame instances (Enhanced CT), else instances. */
function planes(c: SeriesChoiceCandidate): number {
  return c.frameCount ?? c.instanceCount ?? 0;
}

function label(c: SeriesChoiceCandidate): string {
  const parts = [c.seriesNumber !== undefined ? `#${c.seriesNumber}` : undefined, c.seriesDescription ? `"${c.seriesDescription}"` : undefined];
  const named = parts.filter(Boolean).join(' ');
  return named ? `series ${named}` : `series ${c.seriesInstanceUid}`;
}

function summarize(candidates: SeriesChoiceCandidate[], skipped: SkippedSeries[]): string {
  const reasons = skipped.map((s) => s.reason);
  if (reasons.every((r) => r.startsWith('localizer'))) {
    return candidates.length === 1 ? 'only a localizer (scout/topogram) was found' : `only localizers (scout/topogram) were found (${candidates.length} series)`;
  }
  const byUid = new Map(candidates.map((c) => [c.seriesInstanceUid, c]));
  const list = skipped.map((s) => {
    const c = byUid.get(s.seriesInstanceUid);
    return `${c ? label(c) : `series ${s.seriesInstanceUid}`}: ${s.reason}`;
  });
  return `found ${candidates.length} series, none usable (${list.join('; ')})`;
}

/** ' (KERNEL)' when the kernel is recorded, for messages. */
function kernelOf(c: SeriesChoiceCandidate): string {
  return c.convolutionKernel ? ` (${c.convolutionKernel})` : '';
}
