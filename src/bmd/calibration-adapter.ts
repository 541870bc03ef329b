import { calibrate as calibrateDefault } from './calibration/index.js';
import type { Calibrate, CalibrationInput } from './calibration/types.js';
import type { CalibrationResult } from './report.js';

/**
 * Calibration for the engine: src/bmd/calibration's calibrate() (site file, else phantomless internal fit,
 * else nominal kVp default), or an injected implementation (tests, eval). If it throws on an odd scan, the
 * report still comes out, with a nominal line flagged uncalibrated and the reason in the warnings: trabecular
 * HU = 1.2 x vBMD, the typical K2HPO4 slope at 120 kVp (Mindways/Cann-Genant type phantoms).
 */
export function calibrateWithFallback(input: CalibrationInput, calibrate: Calibrate | undefined, warnings: string[]): CalibrationResult {
  try {
    return (calibrate ?? calibrateDefault)(input);
  } catch (e) {
    warnings.push(`Calibration failed (${(e as Error).message}); a nominal default is used.`);
  }
  return { method: 'nominal', slope: 1.2, intercept: 0, uncalibrated: true, references: { kvp: input.loaded.meta.kvp ?? null } };
}
