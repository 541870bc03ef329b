import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAnalysis } from '../../analysis/run-analysis.js';
import { vbmdReport } from '../../bmd/report.js';
import { loadInputPath } from '../../analysis/load-input.js';
import type { LoadedVolume } from '../../imaging/volume.js';
import type { ModelInference } from '../../model/model-runner.js';
import { VbmdError } from '../../util/errors.js';
import { readReaderReference, readTotalsegReference, type SpineReference } from './real-reference.js';
import { acceptanceFailures, scoreReport, type VariantScore } from './real-score.js';
import { applyVariant, variantsOf, type CaseName, type RealVariant } from './real-variants.js';

/**
 * The real-CT yardstick: every variant of the real scans in ../shared through the same path as `vbmd analyze`
 * (runAnalysis on the loaded volume), each report judged against the reference levels.
 */

/** ../shared/data/real beside the project; the scans are never copied into the repository. */
export const DEFAULT_REAL_DATA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'shared', 'data', 'real');

const CASE_FILES: Record<CaseName, { scan: string; marker: string }> = {
  'philips-chest-ct': { scan: 'dicom', marker: 'reference-levels.json' },
  'totalseg-example': { scan: 'example_ct.nii.gz', marker: 'vertebral_bodies.nii.gz' },
};
export const CASE_NAMES = Object.keys(CASE_FILES) as CaseName[];

export interface RealCase {
  name: CaseName;
  original: LoadedVolume;
  reference: SpineReference;
  variants: RealVariant[];
}

export function realCaseAvailable(dataDir: string, name: CaseName): boolean {
  const f = CASE_FILES[name];
  return existsSync(resolve(dataDir, name, f.scan)) && existsSync(resolve(dataDir, name, f.marker));
}

export async function loadRealCase(dataDir: string, name: CaseName): Promise<RealCase> {
  if (!realCaseAvailable(dataDir, name)) {
    throw new VbmdError('not-found', `The real CT ${name} is not in ${dataDir} (expected ${name}/${CASE_FILES[name].scan} and its reference); it lives in the project's ../shared folder.`);
  }
  const dir = resolve(dataDir, name);
  const original = await loadInputPath(resolve(dir, CASE_FILES[name].scan));
  const reference = name === 'philips-chest-ct' ? await readReaderReference(resolve(dir, 'reference-levels.json')) : await readTotalsegReference(dir);
  return { name, original, reference, variants: variantsOf(name) };
}

export interface EvaluateOptions {
  /** The vBMD network, or null for the geometric ROI only (level finding and naming do not depend on it). */
  model: ModelInference | null;
}

export interface VariantResult {
  score: VariantScore;
  failures: string[];
}

/** One variant: build it, analyze it as `vbmd analyze` would, judge the report. */
export async function evaluateVariant(c: RealCase, variant: RealVariant, opts: EvaluateOptions): Promise<VariantResult> {
  const view = applyVariant(variant, c.original, c.reference);
  const t0 = performance.now();
  const report = vbmdReport.parse(await runAnalysis({ loaded: view.loaded }, { model: opts.model }));
  const score = scoreReport(report, c.reference, view, performance.now() - t0);
  return { score, failures: acceptanceFailures(score, variant.strict) };
}

/** Variants whose name contains `only` (all when undefined). */
export function selectVariants(c: RealCase, only?: string): RealVariant[] {
  return only === undefined ? c.variants : c.variants.filter((v) => v.name.includes(only));
}

// ---------------------------------------------------------------------------------------------------------
// Printing.

const fmt = (v: number | null): string => (v === null ? '-' : v.toFixed(2));

function levelRange(levels: string[]): string {
  return levels.length === 0 ? '-' : levels.length === 1 ? levels[0] : `${levels[0]}-${levels[levels.length - 1]} (${levels.length})`;
}

/** One row per variant, then a one-line total. */
export function formatResults(results: VariantResult[]): string {
  const head = ['variant', 'covered', 'anchors', 'rep', 'found', 'right', 'wrong>=0.8', 'skipped', 'split', 'outside', 'summary', 'conf max/min', 'ms', 'holds'];
  const rows = results.map(({ score: s, failures }) => [
    s.name,
    levelRange(s.covered),
    s.anchors.join('+') || 'none',
    String(s.reported),
    String(s.found),
    String(s.right),
    s.wrongConfident.length ? `${s.wrongConfident.length}: ${s.wrongConfident.join('; ')}` : '0',
    s.skipped.length ? s.skipped.join(',') : '0',
    s.split.length ? s.split.join(',') : '0',
    String(s.outside),
    `${s.summary.basis}/${s.summary.category}${s.summary.levels.length ? ` ${s.summary.levels.join(',')}` : ''}`,
    `${fmt(s.maxConfidence)}/${fmt(s.minConfidence)}`,
    String(Math.round(s.analyzeMs)),
    failures.length ? 'NO' : 'yes',
  ]);
  const w = head.map((_, c) => Math.max(head[c].length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]): string => `| ${r.map((x, c) => x.padEnd(w[c])).join(' | ')} |`;
  const out = [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)];
  return out.join('\n') + '\n' + totalLine(results) + '\n';
}

export function totalLine(results: VariantResult[]): string {
  const sum = (f: (s: VariantScore) => number): number => results.reduce((a, r) => a + f(r.score), 0);
  const held = results.filter((r) => r.failures.length === 0).length;
  return (
    `total: ${held}/${results.length} variants hold; ${sum((s) => s.covered.length)} covered bodies, ${sum((s) => s.right)} named right, ` +
    `${sum((s) => s.wrongConfident.length)} named wrongly at >= 0.8, ${sum((s) => s.skipped.length)} skipped, ${sum((s) => s.split.length)} split`
  );
}

/** Per failing variant, why (for the lead and the test messages). */
export function formatFailures(results: VariantResult[]): string {
  return results
    .filter((r) => r.failures.length)
    .map((r) => `${r.score.name}:\n${r.failures.map((f) => `  - ${f}`).join('\n')}`)
    .join('\n');
}
