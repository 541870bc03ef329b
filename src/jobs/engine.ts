import { loadStudyVolume } from '../dicom/load-study.js';
import { analyzeVolume } from '../bmd/analyze.js';
import type { SiteCalibrationFile } from '../bmd/calibration/types.js';
import type { AnalyzeStudy } from './analysis-worker.js';

/**
 * The measurement step of a job: the study's best CT series from the source, as a HU volume, through the
 * engine into a vbmd.report/1. The engine is synchronous CPU work (seconds on a chest CT): run the worker in
 * its own process (`vbmd start --worker-only`) when hooks must stay fast under load.
 */
export function engineAnalyzeStudy(options: { site?: SiteCalibrationFile; kind?: 'dicom' | 'dicomweb' } = {}): AnalyzeStudy {
  return async (source, ref, { signal }) => {
    const loaded = await loadStudyVolume(source, ref, { signal, ...(options.kind ? { kind: options.kind } : {}) });
    signal.throwIfAborted();
    return analyzeVolume(loaded, { ...(options.site ? { site: options.site } : {}) });
  };
}
