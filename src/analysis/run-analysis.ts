import { readFile } from 'node:fs/promises';
import type { DicomSource, StudyRef } from '../dicom/source.js';
import { loadStudyVolume } from '../dicom/load-study.js';
import { loadInputPath } from '../imaging/load-input.js';
import type { LoadedVolume } from '../imaging/volume.js';
import { analyzeVolume, type AnalyzeOptions } from '../bmd/analyze.js';
import type { Calibrate, SiteCalibrationFile } from '../bmd/calibration/types.js';
import type { VbmdReport } from '../bmd/report.js';
import { VbmdError } from '../util/errors.js';
import { z } from 'zod';

export type AnalysisInput = { path: string } | { source: DicomSource; ref: StudyRef } | { loaded: LoadedVolume };

export interface RunAnalysisOptions {
  /** Site calibration, parsed (`site`) or a JSON file path (`calibrationFile`). */
  site?: SiteCalibrationFile;
  calibrationFile?: string;
  calibrate?: Calibrate;
  signal?: AbortSignal;
  software?: { name: string; version: string };
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
  const site = options.site ?? (options.calibrationFile ? await readSiteCalibration(options.calibrationFile) : undefined);
  let loaded: LoadedVolume;
  if ('loaded' in input) loaded = input.loaded;
  else if ('path' in input) loaded = await loadInputPath(input.path, { signal: options.signal });
  else loaded = await loadStudyVolume(input.source, input.ref, { signal: options.signal });
  timingsMs.load = performance.now() - t0;
  options.signal?.throwIfAborted();
  const analyzeOptions: AnalyzeOptions = {
    site,
    calibrate: options.calibrate ?? (await defaultCalibrate()),
    timingsMs,
    software: options.software ?? SOFTWARE,
  };
  const report = analyzeVolume(loaded, analyzeOptions);
  report.timingsMs.total = Math.round((performance.now() - t0) * 10) / 10;
  report.timingsMs.load = Math.round(timingsMs.load * 10) / 10;
  return report;
}

/** src/bmd/calibration's calibrate(), when that module is present (h2's issue); else undefined -> nominal. */
// TEMPORARY: a non-literal specifier so this compiles before h2's module exists; becomes a static import.
const CALIBRATION_MODULE = '../bmd/calibration/index.js';

export async function defaultCalibrate(): Promise<Calibrate | undefined> {
  try {
    const mod = (await import(CALIBRATION_MODULE)) as { calibrate?: Calibrate };
    return mod.calibrate;
  } catch {
    return undefined;
  }
}

const siteEntry = z.object({
  manufacturer: z.string().optional(),
  model: z.string().optional(),
  kvp: z.number().positive().optional(),
  slope: z.number().positive(),
  intercept: z.number(),
  method: z.enum(['phantom', 'asynchronous']).optional(),
});
const siteFile = z.object({
  scanners: z.array(siteEntry),
  default: z.object({ slope: z.number().positive(), intercept: z.number(), method: z.enum(['phantom', 'asynchronous']).optional() }).optional(),
});

/** Reads and validates a site calibration file; prefers the calibration module's reader when present. */
export async function readSiteCalibration(path: string): Promise<SiteCalibrationFile> {
  try {
    const mod = (await import(CALIBRATION_MODULE)) as { readSiteCalibrationFile?: (p: string) => Promise<SiteCalibrationFile> };
    if (mod.readSiteCalibrationFile) return await mod.readSiteCalibrationFile(path);
  } catch (e) {
    if (e instanceof VbmdError) throw e;
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new VbmdError('bad-input', `Cannot read calibration file ${path}: ${(e as Error).message}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new VbmdError('bad-input', `Calibration file ${path} is not valid JSON.`);
  }
  const parsed = siteFile.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new VbmdError('bad-input', `Calibration file ${path} is invalid at ${i.path.join('.') || 'top level'}: ${i.message}.`);
  }
  return parsed.data;
}
