import type { Calibrate, CalibrationInput } from './calibration/types.js';
import type { CalibrationResult } from './report.js';

/**
 * TEMPORARY until src/bmd/calibration's calibrate() lands (h2): when no implementation is given, a nominal
 * default is used and flagged uncalibrated. Nominal: trabecular HU = 0 + 1.2 * vBMD, the typical K2HPO4
 * slope at 120 kVp (QCT phantoms of the Mindways/Cann-Genant type read ~1.2 HU per mg/cm3).
 */
export function calibrateWithFallback(input: CalibrationInput, calibrate: Calibrate | undefined, warnings: string[]): CalibrationResult {
  if (calibrate) {
    try {
      return calibrate(input);
    } catch (e) {
      warnings.push(`Calibration failed (${(e as Error).message}); the nominal default is used.`);
    }
  }
  const site = input.site;
  if (site) {
    // Same matching rule as the site file contract (issue 2): first entry whose given fields all match wins.
    const m = input.loaded.meta;
    const hit = site.scanners.find(
      (e) =>
        (e.manufacturer === undefined || e.manufacturer.toLowerCase() === (m.manufacturer ?? '').toLowerCase()) &&
        (e.model === undefined || e.model.toLowerCase() === (m.manufacturerModelName ?? '').toLowerCase()) &&
        (e.kvp === undefined || e.kvp === m.kvp),
    );
    const use = hit ?? site.default;
    if (use) {
      return { method: use.method ?? 'asynchronous', slope: use.slope, intercept: use.intercept, references: { siteEntry: hit ?? 'default' } };
    }
  }
  return { method: 'nominal', slope: 1.2, intercept: 0, uncalibrated: true, references: { kvp: input.loaded.meta.kvp ?? null } };
}
