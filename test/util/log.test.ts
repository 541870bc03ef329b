import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');

/** Runs `code` (ESM, TypeScript through tsx) in a fresh process and returns its stderr. */
function stderrOf(code: string, env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr;
}

describe('log', () => {
  it('writes JSON lines on stderr once something is logged, with tokens and patient names redacted', () => {
    const out = stderrOf(
      "import { log } from './src/util/log.ts'; log.info({ token: 'secret-token', patientName: 'DOE^JANE', jobId: 'j1' }, 'job done');",
      { LOG_LEVEL: 'info' },
    );
    const line = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'job done', jobId: 'j1', token: '[redacted]', patientName: '[redacted]', level: 30 });
    expect(out).not.toContain('secret-token');
    expect(out).not.toContain('DOE^JANE');
  });

  it('does not load pino while nothing is logged', () => {
    const out = stderrOf(
      "import { createRequire } from 'node:module'; await import('./src/util/log.ts'); const req = createRequire(import.meta.url); console.error(JSON.stringify(Object.keys(req.cache).filter((k) => k.includes('/node_modules/pino/')).length));",
    );
    expect(out.trim().split('\n').at(-1)).toBe('0');
  });
});
