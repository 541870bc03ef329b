import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadEnvConfig, logLevelSetting } from '../../src/config.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('the logger reads LOG_LEVEL only', () => {
  it('importing the logger does not stop on an unrelated bad setting, and takes LOG_LEVEL', () => {
    const script = "const { log } = await import('./src/util/log.ts'); process.stdout.write(log.level);";
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, PORT: 'not-a-port', LOG_LEVEL: 'warn' },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('warn');
  });

  it('a bad LOG_LEVEL logs at info until the start refuses it with the variable named', () => {
    expect(logLevelSetting({ LOG_LEVEL: 'loud' })).toBe('info');
    expect(logLevelSetting({})).toBe('info');
    expect(logLevelSetting({ LOG_LEVEL: 'debug' })).toBe('debug');
    expect(() => loadEnvConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });
});
