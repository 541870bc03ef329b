import { Command } from 'commander';
import { userMessage } from './util/errors.js';
import { registerAnalyze } from './cli/analyze.js';
import { registerPhantom } from './cli/phantom.js';
import { registerEvalPhantoms } from './cli/eval-phantoms.js';
import { registerStart } from './cli/start.js';
import { registerHook } from './cli/hook.js';
import { registerCohort } from './cli/cohort.js';

/**
 * The `vbmd` command. Each subcommand lives in src/cli/<name>.ts and only parses flags and prints; the work
 * is done by the modules it calls. Failures print one sentence on stderr and exit non-zero, never a stack.
 */
const program = new Command('vbmd')
  .description('Vertebral bone mineral density (vBMD, mg/cm3) from routine CT, into the EHR.')
  .showHelpAfterError()
  .exitOverride();

for (const register of [registerAnalyze, registerPhantom, registerEvalPhantoms, registerStart, registerHook, registerCohort]) {
  register(program);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const code = (e as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('commander.')) {
    // commander already printed help or the usage error.
    process.exitCode = code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : 2;
  } else {
    process.stderr.write(`vbmd: ${userMessage(e)}\n`);
    process.exitCode = 1;
  }
}
