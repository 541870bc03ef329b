import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCohort } from '../../src/population/query.js';
import { NdjsonDirectorySource } from '../../src/population/sources/ndjson-dir.js';
import { cohortScript } from '../../src/population/sql/cohort-script.js';
import { writeEngineFixture } from './engine-fixture.js';
import { AS_OF } from './fixtures.js';

/** The shipped standalone script (src/population/sql/cohort.duckdb.sql) is the engine's SQL, current, and
 * gives the streaming engine's osteoporosis + untreated list on the shared fixture when DuckDB runs it. */
const SCRIPT = fileURLToPath(new URL('../../src/population/sql/cohort.duckdb.sql', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await writeEngineFixture();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cohort.duckdb.sql', () => {
  it('is generated from the SQL the engine runs (regenerate: npx tsx src/population/sql/cohort-script.ts)', async () => {
    expect(await readFile(SCRIPT, 'utf8')).toBe(cohortScript());
  });

  it('run by DuckDB in the export folder, lists the streaming engine\'s osteoporosis + untreated patients in order', async () => {
    const db = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
    const connection = await db.connect();
    try {
      await connection.run(`SET file_search_path = '${dir.replaceAll("'", "''")}'`);
      const reader = await connection.runAndReadAll(await readFile(SCRIPT, 'utf8'));
      const fromScript = reader.getRowObjectsJS().map((r) => [r.patient_id, r.vbmd_mg_cm3, r.therapy]);
      const stream = await runCohort(new NdjsonDirectorySource(dir), { category: 'osteoporosis', untreated: true, asOf: AS_OF });
      expect(fromScript.length).toBeGreaterThan(10);
      expect(fromScript).toEqual(stream.rows.map((r) => [r.patient, r.latestVbmdMgCm3, r.therapy]));
      expect(fromScript.map(([p]) => p)).not.toContain('e-contained-treated');
    } finally {
      connection.closeSync();
      db.closeSync();
    }
  });
});
