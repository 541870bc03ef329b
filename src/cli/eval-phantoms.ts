import type { Command } from 'commander';
import { VbmdError } from '../util/errors.js';

/** Placeholder until issue 2 lands: the command exists so `vbmd --help` lists it, and says it is not built. */
export function registerEvalPhantoms(program: Command): void {
  program
    .command('eval-phantoms')
    .description('(not built yet: issue 2)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new VbmdError('unsupported', 'vbmd eval-phantoms is not built yet (issue 2).');
    });
}
