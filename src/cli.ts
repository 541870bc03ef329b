import { Command } from 'commander';
import { userMessage } from './util/errors.js';
import { COMMAND_SUMMARIES, type CommandName } from './cli/summaries.js';

/**
 * The `vbmd` command. Each subcommand lives in src/cli/<name>.ts and only parses flags and prints; the work
 * is done by the modules it calls. Failures print one sentence on stderr and exit non-zero, never a stack.
 */
const program = new Command('vbmd')
  .description('Vertebral bone mineral density (vBMD, mg/cm3) from routine CT, into the EHR.')
  .showHelpAfterError()
  .exitOverride();

type Register = (program: Command) => void;

// `vbmd analyze --json | head`: a reader that stops early is not an error (and never a stack trace).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

/**
 * Commands load lazily: `vbmd analyze` should not pay for the web server, the SMART authorization server and
 * the FHIR router at start-up (several seconds on a 2-core machine). Help lists every command from its summary
 * (src/cli/summaries.ts) and loads none; `vbmd <command> --help` and `vbmd help <command>` load that one.
 */
const COMMANDS: Record<CommandName, () => Promise<Register>> = {
  analyze: async () => (await import('./cli/analyze.js')).registerAnalyze,
  phantom: async () => (await import('./cli/phantom.js')).registerPhantom,
  'eval-phantoms': async () => (await import('./cli/eval-phantoms.js')).registerEvalPhantoms,
  start: async () => (await import('./cli/start.js')).registerStart,
  hook: async () => (await import('./cli/hook.js')).registerHook,
  cohort: async () => (await import('./cli/cohort.js')).registerCohort,
  evaluate: async () => (await import('./cli/evaluate.js')).registerEvaluate,
  'export-patches': async () => (await import('./cli/export-patches.js')).registerExportPatches,
  'eval-real': async () => (await import('./cli/eval-real.js')).registerEvalReal,
  backfill: async () => (await import('./cli/backfill.js')).registerBackfill,
  doctor: async () => (await import('./cli/doctor.js')).registerDoctor,
};

function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

try {
  const asked = process.argv[2] === 'help' ? process.argv[3] : process.argv[2];
  if (isCommand(asked)) (await COMMANDS[asked]())(program);
  else for (const [name, summary] of Object.entries(COMMAND_SUMMARIES)) program.command(name).description(summary);
  await program.parseAsync(process.argv);
} catch (e) {
  const code = (e as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('commander.')) {
    // commander already printed help or the usage error. Help asked for (`--help`, `help <command>`) exits 0,
    // help shown for a missing command 1 (commander's exitCode), a usage error 2.
    const helpOrVersion = code === 'commander.helpDisplayed' || code === 'commander.help' || code === 'commander.version';
    process.exitCode = helpOrVersion ? ((e as { exitCode?: number }).exitCode ?? 0) : 2;
  } else {
    process.stderr.write(`vbmd: ${userMessage(e)}\n`);
    process.exitCode = 1;
  }
}
