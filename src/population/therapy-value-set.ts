import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { VbmdError } from '../util/errors.js';
import defaultValueSetJson from './bone-therapy-value-set.json' with { type: 'json' };

/**
 * The configurable value set of bone-targeted therapy (`--untreated`). JSON, validated here; the default
 * ships as bone-therapy-value-set.json next to this file. See README.md "Treatment" for what counts.
 */
export const RXNORM_SYSTEM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const ATC_SYSTEM = 'http://www.whocc.no/atc';

export const therapyClass = z.enum(['antiresorptive', 'anabolic']);
export type TherapyClass = z.infer<typeof therapyClass>;

const ingredient = z.object({
  name: z.string().min(1),
  class: therapyClass,
  /** Case-insensitive substrings of coding.display / CodeableConcept.text (ingredient and brand names). */
  match: z.array(z.string().min(3)).default([]),
  codes: z.array(z.object({ system: z.string().min(1), code: z.string().min(1) })).default([]),
  /** WHO ATC codes (system http://www.whocc.no/atc), exact. */
  atc: z.array(z.string().regex(/^[A-Z]\d\d[A-Z]{2}\d\d$/, 'ATC codes have 7 characters, e.g. M05BA04')).default([]),
});

export const therapyValueSetSchema = z.object({
  name: z.string().min(1),
  version: z.string().optional(),
  description: z.string().optional(),
  classes: z.record(z.string(), z.string()).optional(),
  ingredients: z.array(ingredient).min(1),
});
export type TherapyValueSet = z.infer<typeof therapyValueSetSchema>;

export interface TherapyMatch {
  ingredient: string;
  class: TherapyClass;
}

/** A compiled value set: one map lookup per coding, one lowercase scan per display/text. */
export interface TherapyMatcher {
  readonly name: string;
  /** The tables it matches with (the DuckDB engine writes them into its SQL). */
  readonly tables: TherapyTables;
  match(concept: unknown): TherapyMatch | null;
}

/** The value set as the two tables both engines match with: `system|code` -> ingredient (a later listing of
 * the same code wins), and lowercase name needles in listing order (the first that matches wins). */
export interface TherapyTables {
  byCode: ReadonlyMap<string, TherapyMatch>;
  byName: ReadonlyArray<readonly [string, TherapyMatch]>;
}

export function therapyTables(vs: TherapyValueSet): TherapyTables {
  const byCode = new Map<string, TherapyMatch>();
  const byName: Array<[string, TherapyMatch]> = [];
  for (const ing of vs.ingredients) {
    const m: TherapyMatch = { ingredient: ing.name, class: ing.class };
    for (const c of ing.codes) byCode.set(`${c.system}|${c.code}`, m);
    for (const a of ing.atc) byCode.set(`${ATC_SYSTEM}|${a}`, m);
    for (const s of ing.match) byName.push([s.toLowerCase(), m]);
  }
  return { byCode, byName };
}

export function compileTherapyValueSet(vs: TherapyValueSet): TherapyMatcher {
  const tables = therapyTables(vs);
  const { byCode, byName } = tables;
  const byText = (text: unknown): TherapyMatch | null => {
    if (typeof text !== 'string' || text.length === 0) return null;
    const lower = text.toLowerCase();
    for (const [needle, m] of byName) if (lower.includes(needle)) return m;
    return null;
  };
  return {
    name: vs.name,
    tables,
    match(concept: unknown): TherapyMatch | null {
      if (!concept || typeof concept !== 'object') return null;
      const cc = concept as { coding?: unknown; text?: unknown };
      if (Array.isArray(cc.coding)) {
        for (const c of cc.coding as Array<{ system?: unknown; code?: unknown }>) {
          if (c && typeof c.system === 'string' && typeof c.code === 'string') {
            const hit = byCode.get(`${c.system}|${c.code}`);
            if (hit) return hit;
          }
        }
        for (const c of cc.coding as Array<{ display?: unknown }>) {
          const hit = c ? byText(c.display) : null;
          if (hit) return hit;
        }
      }
      return byText(cc.text);
    },
  };
}

export function defaultTherapyValueSet(): TherapyValueSet {
  return therapyValueSetSchema.parse(defaultValueSetJson);
}

export async function loadTherapyValueSet(file: string): Promise<TherapyValueSet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new VbmdError('bad-input', `Cannot read the therapy value set ${file}: ${(e as Error).message}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new VbmdError('bad-input', `The therapy value set ${file} is not valid JSON.`);
  }
  const parsed = therapyValueSetSchema.safeParse(json);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ');
    throw new VbmdError('bad-input', `The therapy value set ${file} is not valid (${why}).`);
  }
  return parsed.data;
}
