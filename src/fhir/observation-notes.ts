import type { Annotation } from 'fhir/r4.js';
import type { CalibrationResult, LevelResult, VbmdReport } from '../bmd/report.js';

/**
 * The human-readable part of the vBMD Observation (`note`), one Annotation per topic, so a clinician reading
 * the raw resource (or the SMART app) sees what the number rests on and where it is weak: levels used,
 * levels excluded and why, calibration method and parameters, thoracic extrapolation, contrast, QC.
 */

/** Below this the label (e.g. "L1") may be off by one level; said explicitly (never guessed silently). */
export const LOW_LABEL_CONFIDENCE = 0.8;

export function formatMgCm3(v: number): string {
  return `${roundTenth(v).toFixed(1)} mg/cm3`;
}

export function roundTenth(v: number): number {
  return Math.round(v * 10) / 10;
}

const CALIBRATION_NAMES: Record<CalibrationResult['method'], string> = {
  phantom: 'in-scan phantom calibration',
  asynchronous: 'asynchronous phantom calibration (site configuration for this scanner and kVp)',
  'phantomless-internal': 'phantomless internal calibration from the scan\'s own tissues',
  nominal: 'nominal kVp default (UNCALIBRATED)',
};

const EXCLUSION_NAMES: Record<NonNullable<LevelResult['exclusionReason']>, string> = {
  fracture: 'fracture (vertebral height loss)',
  lesion: 'suspected blastic or lytic lesion',
  'partial-coverage': 'not fully in the scan',
  'roi-too-small': 'trabecular region too small to measure',
  'label-uncertain': 'level label uncertain',
  'implant-or-artifact': 'implant or artifact',
};

export function levelsUsedText(report: VbmdReport): string {
  const s = report.summary;
  if (s.vbmd === null || s.levels.length === 0 || s.category === 'indeterminate') {
    return 'No summary value: no combination of measurable vertebral levels met the quality criteria.';
  }
  const byLevel = new Map(report.levels.map((l) => [l.level, l]));
  const parts = s.levels.map((lv) => {
    const v = byLevel.get(lv)?.vbmd;
    return v === null || v === undefined ? lv : `${lv} ${formatMgCm3(v)}`;
  });
  const how = s.levels.length > 1 ? `mean of ${parts.join(' and ')}` : `single level ${parts[0]}`;
  return `Summary trabecular vBMD ${formatMgCm3(s.vbmd)} = ${how} (basis: ${s.basis}).`;
}

export function exclusionsText(report: VbmdReport): string | undefined {
  const excluded = report.levels.filter((l) => !l.included);
  if (excluded.length === 0) return undefined;
  const lines = excluded.map((l) => {
    const reason = l.exclusionReason ? EXCLUSION_NAMES[l.exclusionReason] : l.vbmd === null ? 'not measured' : 'no reason recorded';
    const measured = l.vbmd !== null ? `; measured ${formatMgCm3(l.vbmd)}, not used` : '';
    const detail = cleanDetail(l.level, l.exclusionDetail);
    return `${l.level}: ${reason}${detail ? ` (${detail})` : ''}${measured}`;
  });
  return `Excluded levels - ${lines.join('; ')}.`;
}

export function labelConfidenceText(report: VbmdReport): string | undefined {
  const weak = report.levels.filter((l) => l.included && l.labelConfidence < LOW_LABEL_CONFIDENCE);
  if (weak.length === 0) return undefined;
  return `Level labelling uncertain for ${weak.map((l) => `${l.level} (confidence ${l.labelConfidence.toFixed(2)})`).join(', ')}: the measured vertebrae may be one level off.`;
}

/** The engine's detail without a repeated "T12: " prefix or final period (it sits inside parentheses). */
export function cleanDetail(level: string, detail: string | null | undefined): string {
  if (!detail) return '';
  return detail.trim().replace(new RegExp(`^(Excluded )?${level}:\\s*`), '').replace(/\.$/, '');
}

export function calibrationText(c: CalibrationResult): string {
  const refs = referencesSummary(c.references);
  const base = `Calibration: ${CALIBRATION_NAMES[c.method]}; trabecular HU = ${c.intercept.toFixed(2)} + ${c.slope.toFixed(4)} x vBMD (mg/cm3)${refs ? `; ${refs}` : ''}.`;
  if (c.uncalibrated || c.method === 'nominal') {
    return `${base} The value is not traceable to any calibration (typical error 12-16 mg/cm3 on phantoms); use it as a rough screen only.`;
  }
  return base;
}

export function extrapolationText(report: VbmdReport): string | undefined {
  const s = report.summary;
  const acr = 'The ACR QCT thresholds (>120 normal, 80-120 low bone density, <80 mg/cm3 osteoporosis) are defined on the mean trabecular vBMD of two lumbar vertebrae';
  if (s.basis === 'thoracic-extrapolated') {
    return `${acr}; this result uses ${s.levels.join(' and ') || 'thoracic levels'} of a chest CT, so the category is a thoracic extrapolation.`;
  }
  if (s.basis === 'single-level') {
    return `${acr}; only one level (${s.levels.join('') || 'unknown'}) was measurable, so the category is an extrapolation.`;
  }
  return undefined;
}

export function contrastText(report: VbmdReport): string | undefined {
  if (!report.input.contrast) return undefined;
  return 'Contrast-enhanced CT: iodinated contrast raises trabecular attenuation, so vBMD reads higher than on a non-contrast scan and osteoporosis may be under-called.';
}

export function modelText(report: VbmdReport): string {
  const roi = new Set(report.levels.filter((l) => l.included).map((l) => l.roiSource ?? 'geometric'));
  const roiText = roi.size ? `; trabecular ROI: ${[...roi].join(' and ')}` : '';
  const engine = report.software ? `${report.software.name} ${report.software.version}` : 'vbmd';
  return report.model
    ? `Computed by ${engine} with model ${report.model.name} ${report.model.version} (sha256 ${report.model.sha256})${roiText}.`
    : `Computed by ${engine} without a model${roiText}.`;
}

export function qcText(report: VbmdReport): string | undefined {
  const w = report.qc.warnings.filter((x) => x.trim().length > 0);
  return w.length ? `Quality control: ${w.join(' ')}` : undefined;
}

/** What was measured: scanner, kVp, geometry and series, so a reader can judge comparability over time. */
export function acquisitionText(report: VbmdReport): string {
  const i = report.input;
  const scanner = [i.manufacturer, i.manufacturerModelName].filter(Boolean).join(' ');
  const voxel = i.spacingMm.map((v) => (Math.round(v * 100) / 100).toString()).join(' x ');
  const parts = [
    scanner ? `scanner ${scanner}` : undefined,
    i.kvp ? `${i.kvp} kVp` : undefined,
    `${i.dims.join(' x ')} voxels of ${voxel} mm`,
    i.seriesInstanceUid ? `series ${i.seriesInstanceUid}` : undefined,
  ].filter(Boolean);
  return `CT: ${parts.join('; ')}.`;
}

/** All notes in reading order; topics that do not apply are left out. */
export function observationNotes(report: VbmdReport, extra: string[] = []): Annotation[] {
  return [
    levelsUsedText(report),
    exclusionsText(report),
    labelConfidenceText(report),
    calibrationText(report.calibration),
    extrapolationText(report),
    contrastText(report),
    qcText(report),
    modelText(report),
    acquisitionText(report),
    ...extra,
  ]
    .filter((t): t is string => typeof t === 'string')
    .map((text) => ({ text }));
}

/**
 * The calibration references in a sentence: measured reference tissues (phantomless), tissues skipped and
 * why, fit quality, and short top-level values (scanner, kVp). Long prose fields of the engine are left out;
 * the full object stays in the report.
 */
export function referencesSummary(refs: Record<string, unknown>): string {
  const parts: string[] = [];
  const tissues = refs.tissues;
  if (tissues && typeof tissues === 'object') {
    const t = Object.entries(tissues as Record<string, unknown>).map(([name, v]) => {
      const hu = (v as { measuredHu?: unknown } | null)?.measuredHu;
      // A tissue whose reading is not a finite number is named without one ("fat", never "fat NaN HU").
      return typeof hu === 'number' && Number.isFinite(hu) ? `${name} ${roundTenth(hu)} HU` : name;
    });
    if (t.length) parts.push(`reference tissues ${t.join(', ')}`);
  }
  const skipped = refs.skipped;
  if (skipped && typeof skipped === 'object') {
    const k = Object.entries(skipped as Record<string, unknown>).map(([name, why]) => (typeof why === 'string' && why.length <= 100 ? `${name} (${why})` : name));
    if (k.length) parts.push(`not used: ${k.join(', ')}`);
  }
  for (const [key, v] of Object.entries(refs)) {
    if (key === 'tissues' || key === 'skipped') continue;
    if (typeof v === 'number' && Number.isFinite(v)) parts.push(`${key} ${Math.round(v * 10000) / 10000}`);
    else if (typeof v === 'string' && v.length <= 40) parts.push(`${key} ${v}`);
    else if (typeof v === 'boolean') parts.push(`${key} ${v ? 'yes' : 'no'}`);
  }
  const text = parts.join('; ');
  return text.length > 400 ? `${text.slice(0, 397)}...` : text;
}
