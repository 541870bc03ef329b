import type { Command } from 'commander';
import { config } from '../config.js';
import {
  CASE_NAMES,
  DEFAULT_REAL_DATA_DIR,
  evaluateVariant,
  formatFailures,
  formatResults,
  loadRealCase,
  realCaseAvailable,
  selectVariants,
  type VariantResult,
} from '../research/evaluation/real-eval.js';
import { closeSharedModelRunner, sharedModelRunner } from '../model/shared-runner.js';
import { VbmdError } from '../util/errors.js';
import { COMMAND_SUMMARIES } from './summaries.js';

interface EvalRealFlags {
  json?: boolean;
  only?: string;
  data: string;
  model?: boolean;
}

/**
 * `vbmd eval-real [--only NAME] [--json]`: the real scans in ../shared and their variants through `vbmd analyze`'s
 * path, each judged against the reference levels; a table per variant and a total. Geometric ROI unless --model.
 */
export function registerEvalReal(program: Command): void {
  program
    .command('eval-real')
    .description(COMMAND_SUMMARIES['eval-real'])
    .option('--only <name>', 'only variants whose name contains this (e.g. philips/original, totalseg/, noise)')
    .option('--json', 'print the per-variant scores and failures as JSON')
    .option('--data <dir>', 'folder holding philips-chest-ct/ and totalseg-example/', DEFAULT_REAL_DATA_DIR)
    .option('--model', 'also run the configured vBMD model, as vbmd analyze does (slower; names and centres do not depend on it)')
    .action(async (flags: EvalRealFlags) => {
      const cases = CASE_NAMES.filter((n) => realCaseAvailable(flags.data, n));
      if (cases.length === 0) throw new VbmdError('not-found', `No real CT found in ${flags.data} (expected ${CASE_NAMES.join(' and ')}); they live in the project's ../shared folder.`);
      const model = flags.model ? await sharedModelRunner(config()) : null;
      const results: VariantResult[] = [];
      try {
        for (const name of cases) {
          const c = await loadRealCase(flags.data, name);
          for (const v of selectVariants(c, flags.only)) {
            const r = await evaluateVariant(c, v, { model });
            results.push(r);
            if (!flags.json) process.stderr.write(`${v.name}: ${r.failures.length ? 'fails' : 'holds'} (${Math.round(r.score.analyzeMs)} ms)\n`);
          }
        }
      } finally {
        if (model) await closeSharedModelRunner();
      }
      if (results.length === 0) throw new VbmdError('bad-input', `No variant name contains "${flags.only}".`);
      if (flags.json) {
        process.stdout.write(JSON.stringify(results, null, 2) + '\n');
        return;
      }
      const missing = CASE_NAMES.filter((n) => !cases.includes(n));
      const values = model ? `with model ${model.model.name} ${model.model.version}` : 'geometric ROI only (no model)';
      process.stdout.write(`real CT variants, ${values}${missing.length ? `; not found: ${missing.join(', ')}` : ''}\n`);
      process.stdout.write(formatResults(results));
      const why = formatFailures(results);
      if (why) process.stdout.write(`\nwhy variants fail:\n${why}\n`);
      for (const r of results) for (const n of r.score.notes) process.stdout.write(`note ${r.score.name}: ${n}\n`);
    });
}
