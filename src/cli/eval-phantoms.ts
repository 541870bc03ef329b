import type { Command } from 'commander';
import { evaluatePhantoms } from '../analysis/eval-phantoms.js';
import { defaultCalibrate } from '../analysis/run-analysis.js';
import { config } from '../config.js';
import { closeSharedModelRunner, sharedModelRunner } from '../model/shared-runner.js';
import { VbmdError } from '../util/errors.js';

/**
 * `vbmd eval-phantoms --count 50 --seed 1000`: accuracy of what `vbmd analyze` reports on generated phantoms,
 * printed as a table: with the configured model (the committed one unless VBMD_MODEL=false or VBMD_MODEL_FILE).
 */
export function registerEvalPhantoms(program: Command): void {
  program
    .command('eval-phantoms')
    .description('Generate N synthetic CTs, analyze them and compare with their truth (labels, vBMD MAE, Spearman, category).')
    .option('--count <n>', 'number of phantoms', '50')
    .option('--seed <n>', 'first seed (tests use other seeds)', '1000')
    .option('--size <n>', 'rows/columns per phantom', '192')
    .option('--quiet', 'no per-case lines')
    .action(async (flags: { count: string; seed: string; size: string; quiet?: boolean }) => {
      const count = Number(flags.count);
      const seed = Number(flags.seed);
      const size = Number(flags.size);
      if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || !Number.isInteger(size) || size < 64) {
        throw new VbmdError('bad-input', '--count and --seed must be integers (count >= 1) and --size an integer >= 64.');
      }
      const calibrate = await defaultCalibrate();
      const model = await sharedModelRunner(config());
      const s = await evaluatePhantoms({ count, seed, size, calibrate, model, onCase: flags.quiet ? undefined : (l) => process.stderr.write(l + '\n') }).finally(
        () => closeSharedModelRunner(),
      );
      const values = model ? `model ${model.model.name} ${model.model.version} (the reported value of vbmd analyze)` : 'geometric ROI (VBMD_MODEL=false)';
      process.stdout.write(`values: ${values}; seeds ${seed}-${seed + count - 1}\n`);
      const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
      const rows: [string, string, string, string][] = [
        ['metric', 'value', 'target', 'holds'],
        ['labels correct (of levels found)', `${pct(s.labelAccuracy)} (${s.levelsFound} found, ${s.levelsTruth} in truth)`, '>= 95%', yes(s.labelAccuracy >= 0.95)],
        ['vBMD MAE, known calibration (no contrast)', `${s.knownCal.maeMgCm3.toFixed(2)} mg/cm3 (n=${s.knownCal.n})`, '<= 3', yes(s.knownCal.maeMgCm3 <= 3)],
        [`vBMD MAE, default (${s.defaultCal.method})`, `${s.defaultCal.maeMgCm3.toFixed(2)} mg/cm3 (n=${s.defaultCal.n})`, '<= 8', yes(s.defaultCal.maeMgCm3 <= 8)],
        [`Spearman, default (${s.defaultCal.method})`, s.defaultCal.spearman.toFixed(3), '>= 0.97', yes(s.defaultCal.spearman >= 0.97)],
        ['Spearman, known calibration', s.knownCal.spearman.toFixed(3), '', ''],
        ['geometric ROI MAE, known calibration (same levels)', `${s.knownCalGeometric.maeMgCm3.toFixed(2)} mg/cm3 (n=${s.knownCalGeometric.n})`, '', ''],
        ['category agreement (summary, no contrast)', pct(s.categoryAgreement), '>= 90%', yes(s.categoryAgreement >= 0.9)],
        [
          `contrast cases (${s.contrastCases.cases}, ${s.contrastCases.flagged} flagged)`,
          `MAE known ${s.contrastCases.knownCalMaeMgCm3.toFixed(1)}, default ${s.contrastCases.defaultCalMaeMgCm3.toFixed(1)} mg/cm3`,
          'flagged',
          yes(s.contrastCases.flagged === s.contrastCases.cases),
        ],
        ['mean analyze time / case', `${s.meanAnalyzeMs.toFixed(0)} ms`, '', ''],
      ];
      const w = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c].length)));
      for (const r of rows) process.stdout.write(`| ${r.map((x, c) => x.padEnd(w[c])).join(' | ')} |\n`);
    });
}

function yes(b: boolean): string {
  return b ? 'yes' : 'NO';
}
