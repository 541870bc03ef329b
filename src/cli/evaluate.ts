import type { Command } from 'commander';
import { readSiteCalibrationFile } from '../bmd/calibration/site-file.js';
import { config } from '../config.js';
import { HELDOUT_SEED_BASE, TRAIN_SEED_BASE } from '../research/training-data/cases.js';
import { DEFAULT_MODEL_FILE } from '../model/model-file.js';
import { ModelRunner } from '../model/model-runner.js';
import { collectManifestRows, collectPhantomRows, type CalibrationMode, type EvalRow } from '../research/evaluation/collect.js';
import { acceptanceChecks, evaluateRows, evaluationMarkdown, writeEvaluation, type EvaluationResult } from '../research/evaluation/evaluate.js';
import { VbmdError } from '../util/errors.js';
import { execFileSync } from 'node:child_process';
import { COMMAND_SUMMARIES } from './summaries.js';

/** The engine's git commit (and whether the tree had changes), for the record; "unknown" outside a checkout. */
function engineCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `commit ${head}${dirty ? ' with uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown';
  }
}

interface Flags {
  manifest?: string;
  phantoms?: string;
  seed: string;
  calibration?: string;
  siteCalibration?: string;
  model?: string;
  out?: string;
  resamples: string;
  cache?: string;
  quiet?: boolean;
}

/**
 * `vbmd evaluate --phantoms N [--seed S]` or `--manifest FILE.csv`: the paper's table (Spearman, Pearson,
 * MAE, Bland-Altman, ROC AUC at < 80 and <= 120, 3-class confusion, bootstrap CIs) for the model and the
 * geometric ROI on the same vertebrae, printed as Markdown; with --out, also JSON, per-vertebra CSV and SVG plots.
 */
export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description(COMMAND_SUMMARIES.evaluate)
    .option('--phantoms <n>', 'number of held-out phantom studies (src/research/training-data/cases.ts; ~9 vertebrae each)')
    .option('--seed <n>', `first phantom seed (held-out ${HELDOUT_SEED_BASE}+; training uses ${TRAIN_SEED_BASE}+)`, String(HELDOUT_SEED_BASE))
    .option('--manifest <csv>', 'site manifest: input (DICOM folder or NIfTI), level, qct_vbmd (reference vBMD, mg/cm3)')
    .option('--calibration <mode>', 'phantoms: site (true scanner line, like a calibrated site), phantomless, or both', 'both')
    .option('--site-calibration <json>', 'manifest: the site calibration file (default: phantomless calibration chain)')
    .option('--model <file>', 'model file <name>-<version>.onnx with its .sha256 (default: VBMD_MODEL_FILE or the committed model)')
    .option('--out <dir>', 'write evaluation.md, evaluation.json, rows.csv and SVG plots here')
    .option('--resamples <n>', 'bootstrap resamples for the 95% CIs', '1000')
    .option('--cache <dir>', 'phantoms: keep the engine side of each study (truth, geometric report, patches) here and reuse it')
    .option('--quiet', 'no per-case lines')
    .action(async (flags: Flags) => {
      if ((flags.phantoms === undefined) === (flags.manifest === undefined)) {
        throw new VbmdError('bad-input', 'Give either --phantoms N or --manifest FILE.csv.');
      }
      const resamples = Number(flags.resamples);
      if (!Number.isInteger(resamples) || resamples < 100) throw new VbmdError('bad-input', '--resamples must be an integer >= 100.');
      const file = flags.model ?? config().VBMD_MODEL_FILE ?? DEFAULT_MODEL_FILE;
      const runner = await ModelRunner.start({ file, threads: config().VBMD_MODEL_THREADS });
      const onCase = flags.quiet ? undefined : (l: string): void => void process.stderr.write(l + '\n');
      try {
        let rows: EvalRow[];
        let modes: CalibrationMode[];
        let set: string;
        if (flags.phantoms !== undefined) {
          const count = Number(flags.phantoms);
          const seed = Number(flags.seed);
          if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) throw new VbmdError('bad-input', '--phantoms and --seed must be integers (phantoms >= 1).');
          if (seed < HELDOUT_SEED_BASE) {
            process.stderr.write(`Warning: seeds below ${HELDOUT_SEED_BASE} may overlap the training set (${TRAIN_SEED_BASE}+); this is not a held-out evaluation.\n`);
          }
          const c = flags.calibration ?? 'both';
          if (c !== 'site' && c !== 'phantomless' && c !== 'both') throw new VbmdError('bad-input', '--calibration must be site, phantomless or both.');
          modes = c === 'both' ? ['site', 'phantomless'] : [c];
          const got = await collectPhantomRows({ count, seed, runner, calibrations: modes, onCase, cacheDir: flags.cache, engine: engineCommit() });
          rows = got.rows;
          set = `held-out phantoms, seeds ${seed}-${seed + count - 1} (src/research/training-data/cases.ts modelCaseOptions), calibration ${modes.join(' and ')}; engine (spine, centres, calibration, geometric ROI): ${[...got.engines].join('; ')}`;
        } else {
          const site = flags.siteCalibration ? await readSiteCalibrationFile(flags.siteCalibration) : undefined;
          modes = [site ? 'site' : 'phantomless'];
          set = `site manifest ${flags.manifest}, calibration ${site ? `site file ${flags.siteCalibration}` : 'phantomless chain'}`;
          rows = await collectManifestRows({ manifest: flags.manifest!, runner, site, onCase });
        }
        const results = modes.map((m) => evaluateRows(rows, m, { resamples }));
        const e: EvaluationResult = {
          model: runner.model,
          set,
          generatedAt: new Date().toISOString(),
          bootstrapResamples: resamples,
          results,
          acceptance: flags.phantoms !== undefined ? acceptanceChecks(results) : [],
        };
        process.stdout.write(evaluationMarkdown(e));
        if (flags.out) {
          const written = await writeEvaluation(flags.out, e, rows);
          process.stderr.write(`Wrote ${written.length} files to ${flags.out}: ${written.join(', ')}\n`);
        }
      } finally {
        await runner.close();
      }
    });
}
