import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AS_OF, EXPECTED } from './fixtures.js';
import { writeFixtureNdjson } from './write-ndjson.js';

const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await writeFixtureNdjson();
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `vbmd cohort` as a user runs it (one process: tsx start-up is the slow part). */
describe('vbmd cohort', () => {
  it('writes CSV to --out, the histogram SVG, and the counts on stderr', async () => {
    const out = join(dir, 'out.csv');
    const svg = join(dir, 'latest.svg');
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'cohort', '--source', `ndjson:${dir}`, '--category', 'osteoporosis', '--untreated', '--as-of', AS_OF, '--out', out, '--histogram', svg],
      { env: { ...process.env, LOG_LEVEL: 'silent' } },
    );
    expect(stdout).toBe('');
    const lines = (await readFile(out, 'utf8')).trim().split('\r\n');
    expect(lines[0].split(',')[0]).toBe('patient_id');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(EXPECTED.osteoporosisUntreated);
    expect(stderr).toContain(`Matched ${EXPECTED.osteoporosisUntreated.length} of ${EXPECTED.patients} patients`);
    expect(stderr).toContain('osteoporosis 7, osteopenia 4, normal 2, indeterminate 1');
    expect(await readFile(svg, 'utf8')).toContain(`(n=${EXPECTED.osteoporosisUntreated.length})`);
  });

  it('fails with one sentence and a non-zero exit for a bad source', async () => {
    const err = (await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'cohort', '--source', 'ftp://x'], { env: { ...process.env, LOG_LEVEL: 'silent' } }).catch(
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    // The last line (other modules may print library warnings when the CLI loads).
    expect(err.stderr.trim().split('\n').at(-1)).toBe('vbmd: --source must be fhir:URL, bulk:URL, ndjson:DIR or parquet:DIR (got "ftp://x").');
  });

  it('answers the same CSV with --engine stream, with DuckDB (the default for ndjson:) and from the kept Parquet stage', async () => {
    const stage = join(dir, 'stage');
    const cohort = async (...args: string[]) =>
      (await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'cohort', '--declining', '5', '--as-of', AS_OF, '--format', 'csv', ...args], { env: { ...process.env, LOG_LEVEL: 'silent' } })).stdout;
    const stream = await cohort('--source', `ndjson:${dir}`, '--engine', 'stream');
    const duckdb = await cohort('--source', `ndjson:${dir}`, '--stage-parquet', stage);
    const parquet = await cohort('--source', `parquet:${stage}`);
    expect(stream.trim().split('\r\n').slice(1).map((l) => l.split(',')[0])).toEqual(EXPECTED.declining5);
    expect(duckdb).toBe(stream);
    expect(parquet).toBe(stream);
    const refused = (await cohort('--source', 'fhir:http://127.0.0.1:9/fhir', '--engine', 'duckdb').catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('The DuckDB engine reads files');
  });
});
