import type { Extension } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { ANALYSIS_EXT, CALIBRATION_METHOD_CODES, VBMD_ANALYSIS_EXTENSION } from './codes.js';
import { analysisKey } from './identifiers.js';

/**
 * The `vbmd-analysis` extension (codes.ts VBMD_ANALYSIS_EXTENSION) on the summary Observation and the
 * DiagnosticReport: calibration, contrast, the levels the summary is the mean of, the algorithm, and the
 * analysis key, as data. The notes say the same in words for people; readers (result-reader.ts) use only
 * this, so nobody parses prose. `superseded` lists the analysis keys this result set replaced (on the
 * DiagnosticReport), so a late retry of an older analysis is recognised and never resurrects it.
 */
export function analysisExtension(report: VbmdReport, superseded: readonly string[] = []): Extension {
  const c = report.calibration;
  const engine = report.software ?? { name: 'vbmd', version: 'unknown' };
  const sub: Extension[] = [
    { url: ANALYSIS_EXT.analysisKey, valueString: analysisKey(report) },
    { url: ANALYSIS_EXT.calibrationMethod, valueCoding: { ...CALIBRATION_METHOD_CODES[c.method] } },
    { url: ANALYSIS_EXT.calibrationSlope, valueDecimal: round6(c.slope) },
    { url: ANALYSIS_EXT.calibrationIntercept, valueDecimal: round6(c.intercept) },
    { url: ANALYSIS_EXT.calibrationTraceable, valueBoolean: !(c.uncalibrated || c.method === 'nominal') },
    { url: ANALYSIS_EXT.contrastEnhanced, valueBoolean: report.input.contrast },
    ...report.summary.levels.map((l) => ({ url: ANALYSIS_EXT.summaryLevel, valueCode: l })),
    { url: ANALYSIS_EXT.engineName, valueString: engine.name },
    { url: ANALYSIS_EXT.engineVersion, valueString: engine.version },
    ...(report.model
      ? [
          { url: ANALYSIS_EXT.modelName, valueString: report.model.name },
          { url: ANALYSIS_EXT.modelVersion, valueString: report.model.version },
          { url: ANALYSIS_EXT.modelSha256, valueString: report.model.sha256 },
        ]
      : []),
    ...superseded.map((k) => ({ url: ANALYSIS_EXT.supersededAnalysis, valueString: k })),
  ];
  return { url: VBMD_ANALYSIS_EXTENSION, extension: sub };
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/** A short human name of the algorithm for `Reference.display` (the Device holds the full identity). */
export function algorithmDisplay(report: VbmdReport): string {
  const engine = report.software ?? { name: 'vbmd', version: 'unknown' };
  return report.model
    ? `${engine.name} ${engine.version} with model ${report.model.name} ${report.model.version}`
    : `${engine.name} ${engine.version} (no model)`;
}
