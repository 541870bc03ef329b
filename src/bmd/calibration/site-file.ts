import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { VolumeMeta } from '../../imaging/volume.js';
import { VbmdError } from '../../util/errors.js';
import type { SiteCalibrationEntry, SiteCalibrationFile } from './types.js';

/**
 * Site calibration file (`--calibration FILE`, VBMD_CALIBRATION_FILE): per scanner/kVp slope and intercept
 * of trabecular HU = intercept + slope * vBMD from the site's own phantom scans.
 * `{"scanners":[{"manufacturer":"GE MEDICAL SYSTEMS","model":"Revolution","kvp":120,"slope":1.21,"intercept":3.5}],
 *   "default":{"slope":1.2,"intercept":0}}`
 */
const method = z.enum(['phantom', 'asynchronous']);
const slope = z.number().positive().finite();
const intercept = z.number().finite();

const entrySchema = z
  .object({
    manufacturer: z.string().trim().min(1).optional(),
    model: z.string().trim().min(1).optional(),
    kvp: z.number().positive().finite().optional(),
    slope,
    intercept,
    method: method.optional(),
  })
  .strict();

export const siteCalibrationFileSchema = z
  .object({
    scanners: z.array(entrySchema),
    default: z.object({ slope, intercept, method: method.optional() }).strict().optional(),
  })
  .strict();

/** Validates parsed JSON; `source` (a path) names the file in the error. */
export function parseSiteCalibration(json: unknown, source = 'the calibration file'): SiteCalibrationFile {
  const r = siteCalibrationFileSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.length ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : '(top level)';
    throw new VbmdError(
      'config',
      `Calibration file ${source} is invalid at ${field}: ${issue.message}; expected {"scanners":[{"manufacturer"?,"model"?,"kvp"?,"slope","intercept"}],"default"?:{"slope","intercept"}}.`,
      { file: source, field },
    );
  }
  return r.data as SiteCalibrationFile;
}

export async function readSiteCalibrationFile(path: string): Promise<SiteCalibrationFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new VbmdError('config', `Calibration file ${path} cannot be read (${code ?? 'error'}); check the path given to --calibration or VBMD_CALIBRATION_FILE.`, { file: path });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new VbmdError('config', `Calibration file ${path} is not valid JSON (${(e as Error).message}).`, { file: path });
  }
  return parseSiteCalibration(json, path);
}

export type SiteMatch =
  | { kind: 'entry'; index: number; entry: SiteCalibrationEntry }
  | { kind: 'default'; entry: NonNullable<SiteCalibrationFile['default']> };

function sameText(a: string, b: string | undefined): boolean {
  return b !== undefined && a.trim().toUpperCase() === b.trim().toUpperCase();
}

/**
 * First entry whose given fields all match the series (DICOM Manufacturer, ManufacturerModelName, KVP;
 * text compared case-insensitively, kVp within 0.5); omitted fields match anything. Else `default`.
 */
export function matchSiteCalibration(site: SiteCalibrationFile, meta: Pick<VolumeMeta, 'manufacturer' | 'manufacturerModelName' | 'kvp'>): SiteMatch | undefined {
  for (let i = 0; i < site.scanners.length; i++) {
    const e = site.scanners[i];
    if (e.manufacturer !== undefined && !sameText(e.manufacturer, meta.manufacturer)) continue;
    if (e.model !== undefined && !sameText(e.model, meta.manufacturerModelName)) continue;
    if (e.kvp !== undefined && (meta.kvp === undefined || Math.abs(e.kvp - meta.kvp) > 0.5)) continue;
    return { kind: 'entry', index: i, entry: e };
  }
  return site.default ? { kind: 'default', entry: site.default } : undefined;
}
