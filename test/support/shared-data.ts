import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

/**
 * The real CT lives in ../shared (read-only, never copied into the project). On a user's machine the folder
 * may be absent: tests that need it are skipped with a visible message. In CI (CI=true) it must be there.
 */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TOTALSEG_DIR = resolve(repoRoot, '..', 'shared', 'data', 'real', 'totalseg-example');

export function totalsegAvailable(): boolean {
  const present = existsSync(resolve(TOTALSEG_DIR, 'example_ct.nii.gz'));
  if (!present) {
    if (process.env.CI === 'true') throw new Error(`CI needs the real CT at ${TOTALSEG_DIR} and it is absent.`);
    console.warn(`SKIPPED: real-CT tests need ${TOTALSEG_DIR} (the project's ../shared folder), which is absent here.`);
  }
  return present;
}

/** Both real CT cases (../shared/data/real): the Philips chest CT with reader reference levels, and TotalSegmentator's. */
export const REAL_DATA_DIR = resolve(repoRoot, '..', 'shared', 'data', 'real');

/** Like totalsegAvailable, for one case folder of REAL_DATA_DIR and the files it must hold. */
export function realCaseAvailable(name: string, files: string[]): boolean {
  const missing = files.filter((f) => !existsSync(resolve(REAL_DATA_DIR, name, f)));
  if (missing.length > 0) {
    const where = resolve(REAL_DATA_DIR, name);
    if (process.env.CI === 'true') throw new Error(`CI needs the real CT at ${where} and it lacks ${missing.join(', ')}.`);
    console.warn(`SKIPPED: real-CT tests need ${where} (the project's ../shared folder), which lacks ${missing.join(', ')} here.`);
  }
  return missing.length === 0;
}
