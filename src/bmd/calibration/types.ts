import type { CalibrationResult } from '../report.js';
import type { LoadedVolume, Vec3 } from '../../imaging/volume.js';

/**
 * What calibration needs from the rest of the engine. Calibration maps trabecular HU to vBMD (mg/cm3
 * K2HPO4-equivalent): HU = intercept + slope * vBMD, so vBMD = (HU - intercept) / slope.
 */
export interface CalibrationInput {
  loaded: LoadedVolume;
  /** Centres of the vertebral bodies found (LPS mm), cranial to caudal; guides muscle/aorta sampling. */
  vertebralBodyCentersMm: Vec3[];
  /** Parsed site calibration file (`--calibration FILE`), if any. */
  site?: SiteCalibrationFile;
}

export interface SiteCalibrationEntry {
  manufacturer?: string;
  model?: string;
  kvp?: number;
  slope: number;
  intercept: number;
  /** 'phantom' (in-scan) or 'asynchronous' (phantom scanned separately); default 'asynchronous'. */
  method?: 'phantom' | 'asynchronous';
}

export interface SiteCalibrationFile {
  scanners: SiteCalibrationEntry[];
  default?: { slope: number; intercept: number; method?: 'phantom' | 'asynchronous' };
}

export type Calibrate = (input: CalibrationInput) => CalibrationResult;

export function hounsfieldToVbmd(hu: number, c: Pick<CalibrationResult, 'slope' | 'intercept'>): number {
  return (hu - c.intercept) / c.slope;
}
