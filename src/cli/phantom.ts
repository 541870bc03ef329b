import type { Command } from 'commander';
import { VbmdError } from '../util/errors.js';

/** Placeholder until issue 2 lands: the command exists so `vbmd --help` lists it, and says it is not built. */
export function registerPhantom(program: Command): void {
  program
    .command('phantom')
    .description('(not built yet: issue 2)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new VbmdError('unsupported', 'vbmd phantom is not built yet (issue 2).');
    });
}
