import type { Command } from 'commander';
import { VbmdError } from '../util/errors.js';

/** Placeholder until issue 6 lands: the command exists so `vbmd --help` lists it, and says it is not built. */
export function registerCohort(program: Command): void {
  program
    .command('cohort')
    .description('(not built yet: issue 6)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new VbmdError('unsupported', 'vbmd cohort is not built yet (issue 6).');
    });
}
