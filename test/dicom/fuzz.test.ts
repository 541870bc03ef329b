import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Mutated DICOM files (a fixed seed, so any failure reproduces: `node --import tsx
 * test/dicom/fixtures/fuzz-dicom.ts SEED COUNT`), deflate bombs among them, through the header scan, the
 * full parse and folder-to-volume loading: every failure is a VbmdError, the codecs still work after,
 * and the run's own process never holds more than 1 GB. The child's peak RSS is getrusage's maxrss, so
 * a short spike counts too.
 */
const here = dirname(fileURLToPath(import.meta.url));
const SEED = 20240614;
const MUTANTS = 600;

interface FuzzResult {
  mutants: number;
  volumes: number;
  ok: number;
  typed: number;
  untyped: { label: string; stage: string; error: string }[];
  bombOutcomes: string[];
  brokenAfter: string[];
  maxRssMb: number;
  ms: number;
  crashed?: string;
}

function runFuzz(): Promise<{ result: FuzzResult; wallMs: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures/fuzz-dicom.ts'), String(SEED), String(MUTANTS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve({ result: JSON.parse(line) as FuzzResult, wallMs: performance.now() - t0 });
      } catch {
        reject(new Error(`fuzz run ended (${signal ?? code}) without a result: ${err.slice(-2000)}`));
      }
    });
  });
}

describe('DICOM input fuzz', () => {
  it(`${MUTANTS} mutated files and deflate bombs: typed errors only, peak RSS under 1 GB, within a minute`, async () => {
    const { result, wallMs } = await runFuzz();
    expect(result.crashed).toBeUndefined();
    expect(result.mutants).toBeGreaterThanOrEqual(500);
    expect(result.volumes).toBeGreaterThanOrEqual(40);
    // Both outcomes occur: the mutants are not all harmless, nor all rejected at the first byte.
    expect(result.ok).toBeGreaterThan(100);
    expect(result.typed).toBeGreaterThan(100);
    expect(result.untyped, JSON.stringify(result.untyped.slice(0, 5), null, 2)).toEqual([]);
    expect(result.bombOutcomes).toHaveLength(4);
    for (const b of result.bombOutcomes) expect(b).toMatch(/deflated dataset inflates to more than \d+ MB.*decompression bomb/);
    expect(result.brokenAfter).toEqual([]);
    expect(result.maxRssMb).toBeLessThan(1024);
    expect(wallMs).toBeLessThan(60_000);
  }, 70_000);
});
