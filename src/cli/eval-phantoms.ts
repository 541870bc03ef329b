import { cpus } from 'node:os';
import type { Command } from 'commander';
import { CONFIDENT_LABEL, evaluatePhantoms, type EvalSummary, type LabelStats } from '../research/evaluation/eval-phantoms.js';
import { evaluatePhantomsInWorkers } from '../research/evaluation/eval-phantoms-pool.js';
import { defaultCalibrate } from '../analysis/run-analysis.js';
import { config } from '../config.js';
import { closeSharedModelRunner, sharedModelRunner } from '../model/shared-runner.js';
import { PHANTOM_PRESETS, type PhantomPreset } from '../research/phantom/types.js';
import { VbmdError } from '../util/errors.js';
import { COMMAND_SUMMARIES } from './summaries.js';

interface Flags {
  count: string;
  seed: string;
  size?: string;
  preset: string;
  workers: string;
  quiet?: boolean;
}

/**
 * `vbmd eval-phantoms --count 50 --seed 1000` (default preset) or `--preset hard --count 60 --seed 20000`:
 * accuracy of what `vbmd analyze` reports on generated phantoms, printed as tables: with the configured model
 * (the committed one unless VBMD_MODEL=false or VBMD_MODEL_FILE).
 */
export function registerEvalPhantoms(program: Command): void {
  program
    .command('eval-phantoms')
    .description(COMMAND_SUMMARIES['eval-phantoms'])
    .option('--count <n>', 'number of phantoms', '50')
    .option('--seed <n>', 'first seed (tests use other seeds)', '1000')
    .option('--preset <name>', `phantom preset: ${PHANTOM_PRESETS.join(' or ')}`, 'default')
    .option('--size <n>', 'rows/columns per phantom (default preset: 192; hard: its own 360-512 draw)')
    .option('--workers <n>', 'worker processes (at most one per core)', '1')
    .option('--quiet', 'no per-case lines')
    .action(async (flags: Flags) => {
      const count = Number(flags.count);
      const seed = Number(flags.seed);
      const size = flags.size === undefined ? undefined : Number(flags.size);
      const workers = Number(flags.workers);
      if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || (size !== undefined && (!Number.isInteger(size) || size < 64))) {
        throw new VbmdError('bad-input', '--count and --seed must be integers (count >= 1) and --size an integer >= 64.');
      }
      if (!Number.isInteger(workers) || workers < 1 || workers > cpus().length) throw new VbmdError('bad-input', `--workers must be 1-${cpus().length} (one per core at most).`);
      if (!(PHANTOM_PRESETS as readonly string[]).includes(flags.preset)) throw new VbmdError('bad-input', `--preset must be one of ${PHANTOM_PRESETS.join(', ')}.`);
      const preset = flags.preset as PhantomPreset;
      const onCase = flags.quiet ? undefined : (l: string): void => void process.stderr.write(l + '\n');
      const model = await sharedModelRunner(config());
      const t0 = performance.now();
      const s =
        workers > 1
          ? await evaluatePhantomsInWorkers({ count, seed, preset, size: size ?? (preset === 'default' ? 192 : undefined), workers, onCase }).finally(() => closeSharedModelRunner())
          : await evaluatePhantoms({ count, seed, preset, size: size ?? (preset === 'default' ? 192 : undefined), calibrate: await defaultCalibrate(), model, onCase }).finally(() => closeSharedModelRunner());
      const wallS = (performance.now() - t0) / 1000;
      const values = model ? `model ${model.model.name} ${model.model.version} (the reported value of vbmd analyze)` : 'geometric ROI (VBMD_MODEL=false)';
      process.stdout.write(`preset ${preset}; values: ${values}; seeds ${seed}-${seed + count - 1}; ${workers} worker(s), wall ${wallS.toFixed(0)} s\n`);
      printTable(mainRows(s, preset));
      if (preset === 'hard') {
        process.stdout.write(`\nREADME row:\n${readmeRow(s, seed, count)}\n\nBy feature in view (cases showing it):\n`);
        printTable(featureRows(s));
      }
    });
}

const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
function yes(b: boolean): string {
  return b ? 'yes' : 'NO';
}

function mainRows(s: EvalSummary, preset: PhantomPreset): string[][] {
  const hard = preset === 'hard';
  // Targets: README.md "Accuracy" for the default preset, and its "Hard phantoms (real-CT anatomy)" for the hard one.
  const labelTarget = hard ? 0.97 : 0.95;
  return [
    ['metric', 'value', 'target', 'holds'],
    ['labels correct (of levels found)', `${pct(s.labelAccuracy)} (${s.levelsFound} found, ${s.levelsTruth} in truth)`, `>= ${labelTarget * 100}%`, yes(s.labelAccuracy >= labelTarget)],
    [`labels given with confidence >= ${CONFIDENT_LABEL} that are wrong`, `${pct(s.confidentWrongFraction)} (${s.confidentWrong} of ${s.confident})`, hard ? '<= 1%' : '', hard ? yes(s.confidentWrongFraction <= 0.01) : ''],
    ['skipped bodies (fully covered C7-L5, no reported centre inside)', `${s.skippedBodies} of ${s.truthBodies}`, hard ? '0' : '', hard ? yes(s.skippedBodies === 0) : ''],
    ['vBMD MAE, known calibration (no contrast)', `${s.knownCal.maeMgCm3.toFixed(2)} mg/cm3 (n=${s.knownCal.n})`, '<= 3', yes(s.knownCal.maeMgCm3 <= 3)],
    ['geometric ROI MAE, known calibration (same levels)', `${s.knownCalGeometric.maeMgCm3.toFixed(2)} mg/cm3 (n=${s.knownCalGeometric.n})`, hard ? '<= 3' : '', hard ? yes(s.knownCalGeometric.maeMgCm3 <= 3) : ''],
    [`vBMD MAE, default (${s.defaultCal.method})`, `${s.defaultCal.maeMgCm3.toFixed(2)} mg/cm3 (n=${s.defaultCal.n})`, '<= 8', yes(s.defaultCal.maeMgCm3 <= 8)],
    [`Spearman, default (${s.defaultCal.method})`, s.defaultCal.spearman.toFixed(3), '>= 0.97', yes(s.defaultCal.spearman >= 0.97)],
    ['Spearman, known calibration (geometric ROI)', `${s.knownCal.spearman.toFixed(3)} (${s.knownCalGeometric.spearman.toFixed(3)})`, '', ''],
    ['category agreement (summary, no contrast)', pct(s.categoryAgreement), '>= 90%', yes(s.categoryAgreement >= 0.9)],
    [
      `contrast cases (${s.contrastCases.cases}, ${s.contrastCases.flagged} flagged)`,
      `MAE known ${s.contrastCases.knownCalMaeMgCm3.toFixed(1)}, default ${s.contrastCases.defaultCalMaeMgCm3.toFixed(1)} mg/cm3`,
      'flagged',
      yes(s.contrastCases.flagged === s.contrastCases.cases),
    ],
    ['mean analyze time / case', `${s.meanAnalyzeMs.toFixed(0)} ms`, '', ''],
  ];
}

/** One row for the README's hard-phantom table. */
export function readmeRow(s: EvalSummary, seed: number, count: number): string {
  return (
    `| ${seed}-${seed + count - 1} (\`vbmd eval-phantoms --preset hard --count ${count} --seed ${seed}\`) | ${count} | ${s.levelsFound} (${s.truthBodies}) | ${pct(s.labelAccuracy)} | ` +
    `${pct(s.confidentWrongFraction)} (${s.confidentWrong}/${s.confident}) | ${s.skippedBodies} | ${s.knownCal.maeMgCm3.toFixed(2)} mg/cm3, n=${s.knownCal.n} | ${s.knownCalGeometric.maeMgCm3.toFixed(2)} mg/cm3, n=${s.knownCalGeometric.n} |`
  );
}

function featureRows(s: EvalSummary): string[][] {
  const rows: string[][] = [['feature', 'cases', 'labels correct', `conf >= ${CONFIDENT_LABEL} wrong`, 'skipped bodies']];
  const entries = Object.entries(s.byFeature).sort((a, b) => a[1].labelAccuracy - b[1].labelAccuracy);
  for (const [k, v] of entries as [string, LabelStats][]) {
    rows.push([k, String(v.cases), `${pct(v.labelAccuracy)} (${v.correct}/${v.levelsFound})`, `${pct(v.confidentWrongFraction)} (${v.confidentWrong}/${v.confident})`, `${v.skippedBodies} of ${v.truthBodies}`]);
  }
  return rows;
}

function printTable(rows: string[][]): void {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) process.stdout.write(`| ${r.map((x, c) => x.padEnd(w[c])).join(' | ')} |\n`);
}
