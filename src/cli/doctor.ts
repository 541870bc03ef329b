import type { Command } from 'commander';
import { runDoctor } from '../doctor/checks.js';
import type { CheckResult } from '../doctor/checks.js';
import { COMMAND_SUMMARIES } from './summaries.js';

/** `vbmd doctor [--json]`: one line per check; exit 1 when any check failed (warnings do not fail it). */
const MARK: Record<CheckResult['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: '--  ' };

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(COMMAND_SUMMARIES.doctor)
    .option('--json', 'the checks as JSON on stdout')
    .action(async (f: { json?: boolean }) => {
      const results = await runDoctor(process.env);
      const failed = results.filter((r) => r.status === 'fail').length;
      if (f.json) process.stdout.write(`${JSON.stringify({ ok: failed === 0, checks: results })}\n`);
      else {
        for (const r of results) process.stdout.write(`${MARK[r.status]}  ${r.check}: ${r.message}\n`);
        process.stdout.write(failed === 0 ? 'Everything needed is in order.\n' : `${failed} problem${failed === 1 ? '' : 's'} to fix before this deployment works.\n`);
      }
      process.exitCode = failed === 0 ? 0 : 1;
    });
}
