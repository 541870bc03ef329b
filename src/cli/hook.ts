import type { Command } from 'commander';
import { VbmdError } from '../util/errors.js';

/** Placeholder until issue 8 lands: the command exists so `vbmd --help` lists it, and says it is not built. */
export function registerHook(program: Command): void {
  program
    .command('hook')
    .description('(not built yet: issue 8)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new VbmdError('unsupported', 'vbmd hook is not built yet (issue 8).');
    });
}
