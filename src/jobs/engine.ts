import { runAnalysis } from '../analysis/run-analysis.js';
import type { AnalyzeStudy } from './analysis-worker.js';

/**
 * The measurement step of a job: the engine's runAnalysis (series choice, HU volume, spine, levels, ROIs,
 * calibration, QC) on the study from the job's DicomSource. The engine is synchronous CPU work (about a
 * second to a few seconds per chest CT here): run the worker in its own process (`vbmd start --worker-only`)
 * when hooks must stay fast under load.
 */
export function engineAnalyzeStudy(options: { calibrationFile?: string } = {}): AnalyzeStudy {
  return (source, ref, { signal, series, onLoaded }) =>
    runAnalysis({ source, ref, ...(series ? { series } : {}) }, {
      signal,
      ...(onLoaded ? { onLoaded } : {}),
      ...(options.calibrationFile ? { calibrationFile: options.calibrationFile } : {}),
    });
}
