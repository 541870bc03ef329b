import type { LevelResult, VbmdReport } from '../../src/bmd/report.js';
import { categoryForVbmd, REPORT_SCHEMA } from '../../src/bmd/report.js';

/** vbmd.report/1 documents with chosen values, for seeding a FHIR server through the real mapping. */

export interface LevelSpec {
  level: LevelResult['level'];
  vbmd: number | null;
  excluded?: LevelResult['exclusionReason'];
}

export function makeReport(opts: {
  studyUid: string;
  acquired: string;
  levels: LevelSpec[];
  basis?: VbmdReport['summary']['basis'];
  calibration?: VbmdReport['calibration']['method'];
  contrast?: boolean;
}): VbmdReport {
  const used = opts.levels.filter((l) => !l.excluded && l.vbmd !== null);
  // ACR: two lumbar vertebrae when there are two, else the lowest measurable ones (thoracic extrapolation).
  const lumbar = used.filter((l) => l.level.startsWith('L'));
  const summaryLevels = (lumbar.length >= 2 ? lumbar : used.slice(-2)).slice(0, 2);
  const vbmd = summaryLevels.length ? summaryLevels.reduce((a, l) => a + (l.vbmd as number), 0) / summaryLevels.length : null;
  const basis = opts.basis ?? (summaryLevels.length === 0 ? 'none' : summaryLevels.length === 1 ? 'single-level' : summaryLevels.every((l) => l.level.startsWith('L')) ? 'lumbar' : 'thoracic-extrapolated');
  return {
    schema: REPORT_SCHEMA,
    input: {
      kind: 'dicomweb',
      studyInstanceUid: opts.studyUid,
      seriesInstanceUid: `${opts.studyUid}.1`,
      acquisitionDateTime: opts.acquired,
      dims: [512, 512, 300],
      spacingMm: [0.7, 0.7, 1],
      kvp: 120,
      contrast: opts.contrast ?? false,
    },
    levels: opts.levels.map((l, i) => ({
      level: l.level,
      labelConfidence: 0.95,
      centerMm: [0, 0, -100 - i * 30],
      roiHuMedian: l.vbmd,
      roiHuMean: l.vbmd,
      roiVoxels: 2000,
      vbmd: l.vbmd,
      included: !l.excluded && l.vbmd !== null,
      exclusionReason: l.excluded ?? null,
      exclusionDetail: l.excluded === 'lesion' ? 'density 310 mg/cm3, far above neighbours' : null,
    })),
    summary: { vbmd, levels: summaryLevels.map((l) => l.level), basis, category: categoryForVbmd(vbmd) },
    calibration: {
      method: opts.calibration ?? 'phantomless-internal',
      slope: 1.1,
      intercept: -2,
      ...(opts.calibration === 'nominal' ? { uncalibrated: true } : {}),
      references: {},
    },
    qc: { warnings: [] },
    model: { name: 'vbmd-resunet3d', version: '1.2.0', sha256: 'a'.repeat(64) },
    software: { name: 'vbmd', version: '0.1.0' },
    timingsMs: {},
  };
}

const DAY = 24 * 3600 * 1000;

/** `count` studies spread evenly over `years`, summary falling linearly from `from` to `to` (mg/cm3), L1/L2
 * straddling the summary by +-2. */
export function decliningSeries(prefix: string, count: number, years: number, from: number, to: number, endMs: number): VbmdReport[] {
  return Array.from({ length: count }, (_, i) => {
    const frac = count === 1 ? 1 : i / (count - 1);
    const t = endMs - (1 - frac) * years * 365.25 * DAY;
    const v = Math.round((from + (to - from) * frac) * 10) / 10;
    return makeReport({
      studyUid: `1.2.826.0.1.3680043.8.498.${prefix}.${i + 1}`,
      acquired: new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'),
      levels: [
        { level: 'T12', vbmd: v + 4 },
        { level: 'L1', vbmd: v + 2 },
        { level: 'L2', vbmd: v - 2 },
      ],
      basis: 'lumbar',
    });
  });
}

/** A patient whose results carry every caveat: 8 CTs over 4 years falling from 132 to 70 mg/cm3 (a fast
 * decline beyond the least significant change), the latest contrast-enhanced and a thoracic extrapolation,
 * two earlier ones contrast-enhanced, one uncalibrated. */
export function caveatSeries(prefix: string, endMs: number): VbmdReport[] {
  const values = [132, 128, 121, 113, 104, 93, 82, 70];
  return values.map((v, i) => {
    const t = endMs - (values.length - 1 - i) * 0.55 * 365.25 * DAY;
    const last = i === values.length - 1;
    return makeReport({
      studyUid: `1.2.826.0.1.3680043.8.498.${prefix}.${i + 1}`,
      acquired: new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'),
      levels: last
        ? [
            { level: 'T11', vbmd: v + 3 },
            { level: 'T12', vbmd: v - 3 },
            { level: 'L1', vbmd: null, excluded: 'fracture' },
          ]
        : [
            { level: 'T12', vbmd: v + 4 },
            { level: 'L1', vbmd: v + 2 },
            { level: 'L2', vbmd: v - 2 },
          ],
      contrast: last || i === 2 || i === 5,
      ...(i === 4 ? { calibration: 'nominal' as const } : {}),
    });
  });
}
