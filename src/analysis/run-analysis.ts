import type { DicomSource, SeriesCandidate, StudyRef } from '../dicom/source.js';
import { loadStudyVolume } from '../dicom/load-study.js';
import { loadInputPath } from './load-input.js';
import type { LoadedVolume } from '../imaging/volume.js';
import { analyzeVolume, type AnalyzeOptions } from '../bmd/analyze.js';
import type { Calibrate, SiteCalibrationFile } from '../bmd/calibration/types.js';
import type { VbmdReport } from '../bmd/report.js';
import { calibrate, readSiteCalibrationFile } from '../bmd/calibration/index.js';
import { config } from '../config.js';
import type { ModelInference } from '../model/model-runner.js';
import { enrichReportWithModel } from '../model/enrich-report.js';
import { sharedModelRunner } from '../model/shared-runner.js';
import { ONE_THREAD, type ChunkRunner } from '../bmd/parallel/chunk-runner.js';
import { sharedHelperThread } from '../bmd/parallel/helper-thread.js';

/** `series`: the study's series as a search already found them (the job's study record), so none is asked again. */
export type AnalysisInput = { path: string } | { source: DicomSource; ref: StudyRef; series?: SeriesCandidate[] } | { loaded: LoadedVolume };

export interface RunAnalysisOptions {
  /** Site calibration, parsed (`site`) or a JSON file path (`calibrationFile`). */
  site?: SiteCalibrationFile;
  calibrationFile?: string;
  calibrate?: Calibrate;
  signal?: AbortSignal;
  software?: { name: string; version: string };
  /**
   * The vBMD network (models/MODEL_CARD.md): a started runner, null for none, or undefined for the process-wide one
   * from configuration (VBMD_MODEL, VBMD_MODEL_FILE; started while the series loads, and a missing or corrupt model
   * file fails the analysis before the engine runs).
   */
  model?: ModelInference | null;
  /**
   * Intra-op threads for the process-wide runner when this call is the one that starts it and VBMD_MODEL_THREADS
   * is not set (a one-shot command passes oneShotModelThreads(); the service keeps a core for its event loop).
   */
  modelThreads?: number;
  /**
   * Where the engine's whole-volume loops run: undefined for the process-wide helper thread when the series is
   * read here (a path or a DICOM source: the loader puts it in shared memory), this thread alone for a volume
   * passed in (`{ loaded }`: phantoms and evaluations, which keep every core busy themselves).
   */
  runner?: ChunkRunner;
  /** Called with the loaded volume (the job keeps it for the DICOM results instead of retrieving the series again). */
  onLoaded?: (loaded: LoadedVolume) => void;
}

/** Software identity written into every report. */
export const SOFTWARE = { name: 'vbmd', version: '0.1.0' } as const;

/**
 * Input (path, DICOM source + study, or an already loaded volume) to a `vbmd.report/1`, with per-stage
 * timings (load, spine, labels, roi, calibration, qc, total) in `timingsMs`.
 */
export async function runAnalysis(input: AnalysisInput, options: RunAnalysisOptions = {}): Promise<VbmdReport> {
  const timingsMs: Record<string, number> = {};
  const t0 = performance.now();
  // The model starts (worker thread, onnxruntime session, probe run) on another core while the series loads
  // and the engine measures; it is awaited only when the levels are known.
  const cfg = config();
  const modelReady =
    options.model !== undefined
      ? Promise.resolve(options.model)
      : sharedModelRunner({ ...cfg, VBMD_MODEL_THREADS: cfg.VBMD_MODEL_THREADS ?? options.modelThreads });
  modelReady.catch(() => undefined); // a load error below must not leave this rejection unhandled
  // The helper thread boots while the series loads.
  const runner = options.runner ?? ('loaded' in input ? ONE_THREAD : sharedHelperThread());
  const site = options.site ?? (options.calibrationFile ? await readSiteCalibration(options.calibrationFile) : undefined);
  let loaded: LoadedVolume;
  if ('loaded' in input) loaded = input.loaded;
  else if ('path' in input) loaded = await loadInputPath(input.path, { signal: options.signal });
  else loaded = await loadStudyVolume(input.source, input.ref, { signal: options.signal, ...(input.series ? { series: input.series } : {}) });
  timingsMs.load = performance.now() - t0;
  options.onLoaded?.(loaded);
  options.signal?.throwIfAborted();
  // A model that has already failed (a missing or corrupt file is found in milliseconds) fails the analysis
  // now, before the engine's seconds of work: the race settles with it when it is settled, else with undefined.
  await Promise.race([modelReady, undefined]);
  const analyzeOptions: AnalyzeOptions = {
    site,
    calibrate: options.calibrate ?? calibrate,
    timingsMs,
    software: options.software ?? SOFTWARE,
    runner,
  };
  let report = analyzeVolume(loaded, analyzeOptions);
  const model = await modelReady;
  if (model) {
    const tm = performance.now();
    report = await enrichReportWithModel(report, loaded, model);
    report.timingsMs.model = Math.round((performance.now() - tm) * 10) / 10;
  }
  report.timingsMs.total = Math.round((performance.now() - t0) * 10) / 10;
  report.timingsMs.load = Math.round(timingsMs.load * 10) / 10;
  return report;
}

/** The calibration chain the service uses (site file, phantomless internal, nominal): src/bmd/calibration. */
export async function defaultCalibrate(): Promise<Calibrate> {
  return calibrate;
}

/** Reads and validates a site calibration file (`--calibration FILE`). */
export async function readSiteCalibration(path: string): Promise<SiteCalibrationFile> {
  return readSiteCalibrationFile(path);
}
