import type { Command } from 'commander';
import { VbmdError } from '../util/errors.js';

/** Placeholder until issue 8 lands: the command exists so `vbmd --help` lists it, and says it is not built. */
export function registerStart(program: Command): void {
  program
    .command('start')
    .description('(not built yet: issue 8)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new VbmdError('unsupported', 'vbmd start is not built yet (issue 8).');
    });
}
