import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { VbmdError } from '../src/util/errors.js';

/**
 * The CT procedures that show the spine well enough to measure vBMD (chest and abdomen CT: CPT
 * 71250/71260/71270/71271, 74150-74178, LOINC 24627-2, ...). Shipped as `ct-value-set.json`; a site adds its
 * own local order codes with a file of the same shape (CDS_CT_VALUE_SET_FILE), merged over the default.
 */
export const DEFAULT_CT_VALUE_SET_FILE = join(dirname(fileURLToPath(import.meta.url)), 'ct-value-set.json');

const concept = z.object({ code: z.string().min(1), display: z.string().optional() });
const range = z
  .object({ from: z.string().regex(/^\d+$/), to: z.string().regex(/^\d+$/), display: z.string().optional() })
  .refine((r) => r.from.length === r.to.length && r.from <= r.to, 'range "from" must be <= "to" with the same number of digits');
const include = z.object({
  system: z.string().min(1),
  concepts: z.array(concept).default([]),
  ranges: z.array(range).default([]),
});
export const ctValueSetFile = z.object({
  description: z.string().optional(),
  replaceDefault: z.boolean().optional(),
  include: z.array(include).min(1),
});
export type CtValueSetFile = z.infer<typeof ctValueSetFile>;

export interface CodingLike {
  system?: string;
  code?: string;
  display?: string;
}

export interface CtValueSet {
  /** The first coding of `codings` in the set, with its display from the value set when it has one. */
  match(codings: readonly CodingLike[] | undefined): { system: string; code: string; display?: string } | undefined;
  readonly size: number;
}

export function parseCtValueSet(json: unknown, source: string): CtValueSetFile {
  const parsed = ctValueSetFile.safeParse(json);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`).join('; ');
    throw new VbmdError('config', `CT value set ${source} is not valid (${why}); see cds-hooks/ct-value-set.json for the format.`);
  }
  return parsed.data;
}

function readValueSetFile(path: string): CtValueSetFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new VbmdError('config', `Cannot read the CT value set file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check CDS_CT_VALUE_SET_FILE.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new VbmdError('config', `The CT value set file ${path} is not valid JSON.`);
  }
  return parseCtValueSet(json, path);
}

/** Loads the shipped value set, plus (or instead of, with replaceDefault) the site's file. */
export function loadCtValueSet(extraFile?: string): CtValueSet {
  const files = [readValueSetFile(DEFAULT_CT_VALUE_SET_FILE)];
  if (extraFile) {
    const extra = readValueSetFile(extraFile);
    if (extra.replaceDefault) files.length = 0;
    files.push(extra);
  }
  return buildCtValueSet(files.flatMap((f) => f.include));
}

export function buildCtValueSet(includes: CtValueSetFile['include']): CtValueSet {
  const exact = new Map<string, string | undefined>();
  const ranges: { system: string; from: string; to: string; display?: string }[] = [];
  for (const inc of includes) {
    for (const c of inc.concepts) exact.set(`${inc.system}|${c.code}`, c.display);
    for (const r of inc.ranges) ranges.push({ system: inc.system, ...r });
  }
  return {
    size: exact.size + ranges.length,
    match(codings) {
      for (const c of codings ?? []) {
        if (!c.system || !c.code) continue;
        const key = `${c.system}|${c.code}`;
        if (exact.has(key)) {
          const display = exact.get(key) ?? c.display;
          return { system: c.system, code: c.code, ...(display ? { display } : {}) };
        }
        for (const r of ranges) {
          // Same-length numeric codes compare correctly as strings.
          if (r.system === c.system && /^\d+$/.test(c.code) && c.code.length === r.from.length && c.code >= r.from && c.code <= r.to) {
            const display = c.display ?? r.display;
            return { system: c.system, code: c.code, ...(display ? { display } : {}) };
          }
        }
      }
      return undefined;
    },
  };
}
