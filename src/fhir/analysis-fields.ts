import type { CalibrationMethod } from '../bmd/report.js';
import { ANALYSIS_EXT, CALIBRATION_METHOD_CODES, VBMD_ANALYSIS_EXTENSION } from './codes.js';

/**
 * Reads the `vbmd-analysis` extension (analysis-extension.ts writes it) into plain fields. Browser-safe (no
 * node imports): the SMART app, the CDS service, the cohort and the writer's lifecycle all read it here.
 * Input is untrusted JSON: anything of the wrong shape is ignored, never thrown on.
 */
export interface CalibrationFields {
  method: CalibrationMethod | 'unknown';
  /** trabecular HU = intercept + slope x vBMD (mg/cm3). */
  slopeHuPerMgCm3: number | null;
  interceptHu: number | null;
  /** false for the nominal default: the value is not traceable to any calibration. */
  traceable: boolean;
}

export interface AlgorithmFields {
  engine: { name: string; version: string } | null;
  model: { name: string; version: string; sha256: string } | null;
}

export interface AnalysisFields {
  analysisKey: string | null;
  calibration: CalibrationFields | null;
  contrastEnhanced: boolean | null;
  summaryLevels: string[];
  algorithm: AlgorithmFields;
  superseded: string[];
}

type Ext = { url?: unknown; extension?: unknown } & Record<string, unknown>;

function asList(v: unknown): Ext[] {
  return Array.isArray(v) ? v.filter((x): x is Ext => typeof x === 'object' && x !== null) : [];
}

const METHOD_BY_CODE = new Map<string, CalibrationMethod>(
  (Object.entries(CALIBRATION_METHOD_CODES) as [CalibrationMethod, { code: string }][]).map(([m, c]) => [c.code, m]),
);

export function readAnalysisFields(resource: unknown): AnalysisFields | null {
  const top = asList((resource as { extension?: unknown } | null)?.extension).find((e) => e.url === VBMD_ANALYSIS_EXTENSION);
  if (!top) return null;
  const sub = asList(top.extension);
  const all = (url: string): Ext[] => sub.filter((e) => e.url === url);
  const str = (url: string): string | null => {
    const v = all(url)[0]?.valueString;
    return typeof v === 'string' ? v : null;
  };
  const num = (url: string): number | null => {
    const v = all(url)[0]?.valueDecimal;
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  const bool = (url: string): boolean | null => {
    const v = all(url)[0]?.valueBoolean;
    return typeof v === 'boolean' ? v : null;
  };
  const methodCoding = all(ANALYSIS_EXT.calibrationMethod)[0]?.valueCoding as { system?: unknown; code?: unknown } | undefined;
  const method = typeof methodCoding?.code === 'string' ? (METHOD_BY_CODE.get(methodCoding.code) ?? 'unknown') : null;
  const traceable = bool(ANALYSIS_EXT.calibrationTraceable);
  const engineName = str(ANALYSIS_EXT.engineName);
  const engineVersion = str(ANALYSIS_EXT.engineVersion);
  const modelName = str(ANALYSIS_EXT.modelName);
  const modelVersion = str(ANALYSIS_EXT.modelVersion);
  const modelSha = str(ANALYSIS_EXT.modelSha256);
  return {
    analysisKey: str(ANALYSIS_EXT.analysisKey),
    calibration:
      method === null
        ? null
        : {
            method,
            slopeHuPerMgCm3: num(ANALYSIS_EXT.calibrationSlope),
            interceptHu: num(ANALYSIS_EXT.calibrationIntercept),
            // Unknown traceability counts as not traceable: a reader must not present it as calibrated.
            traceable: traceable === true && method !== 'nominal',
          },
    contrastEnhanced: bool(ANALYSIS_EXT.contrastEnhanced),
    summaryLevels: all(ANALYSIS_EXT.summaryLevel).map((e) => e.valueCode).filter((v): v is string => typeof v === 'string'),
    algorithm: {
      engine: engineName && engineVersion ? { name: engineName, version: engineVersion } : null,
      model: modelName && modelVersion && modelSha ? { name: modelName, version: modelVersion, sha256: modelSha } : null,
    },
    superseded: all(ANALYSIS_EXT.supersededAnalysis).map((e) => e.valueString).filter((v): v is string => typeof v === 'string'),
  };
}

/** Same form as identifiers.ts algorithmKey, from the stored fields. */
export function algorithmKeyOf(a: AlgorithmFields): string | undefined {
  if (!a.engine) return undefined;
  return `${a.engine.name}@${a.engine.version}|${a.model ? `${a.model.name}@${a.model.version}#${a.model.sha256}` : 'no-model'}`;
}
