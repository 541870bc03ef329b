import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COHORT_RESOURCE_TYPES } from '../../src/population/resources.js';
import { RowSink } from '../../src/population/output/row-sink.js';
import { ndjsonFiles } from '../../src/population/sources/ndjson-dir.js';
import { openDuckDb } from '../../src/population/sql/duckdb-session.js';
import { FLAT_MEDICATION_COLUMNS, FLAT_OBSERVATION_COLUMNS, flattenSql, readNdjsonSql } from '../../src/population/sql/flatten.js';
import { runCohortSql } from '../../src/population/sql/run-cohort-sql.js';
import { evaluateView, VIEW_DEFINITIONS } from '../../src/population/view-definitions.js';
import { isVbmdError } from '../../src/util/errors.js';
import { writeEngineFixture } from './engine-fixture.js';
import { AS_OF } from './fixtures.js';

/**
 * The DuckDB engine's own edges: its flattening is the ViewDefinitions' (checked against @medplum/core's
 * SQL-on-FHIR evaluator on the shared fixture), and bad input, a stage it must not overwrite or must not
 * trust, and a cancelled run end with one sentence, nothing half-written.
 */
let dir: string;
let files: string[];
const lines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  dir = await writeEngineFixture();
  files = await ndjsonFiles(dir, COHORT_RESOURCE_TYPES);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function flattened(kind: 'vbmd' | 'medication', columns: readonly string[]): Promise<Record<string, unknown>[]> {
  const db = await openDuckDb();
  try {
    const rows = await db.rows(`SELECT to_json({${columns.map((c) => `'${c}': ${c}`).join(', ')}})::VARCHAR FROM (${flattenSql(readNdjsonSql(files))}) WHERE kind = '${kind}'`);
    return rows.map(([json]) => JSON.parse(json as string) as Record<string, unknown>);
  } finally {
    await db.close();
  }
}

describe('DuckDB flattening = the SQL-on-FHIR ViewDefinitions', () => {
  it('vbmd_observation: the same values in every shared column, for every summary Observation', async () => {
    // @medplum/core's getReferenceKey throws on a subject with an identifier only: those stay out.
    const resources = lines(await readFile(join(dir, 'Observation.ndjson'), 'utf8')).filter((r) => (r.subject as { reference?: string } | undefined)?.reference);
    const ids = new Set(resources.map((r) => r.id));
    const want = evaluateView(VIEW_DEFINITIONS.vbmdObservation, resources).filter((r) => r.status !== undefined && r.status !== null);
    const got = (await flattened('vbmd', FLAT_OBSERVATION_COLUMNS)).filter((r) => ids.has(r.id));
    const shared = FLAT_OBSERVATION_COLUMNS.filter((c) => c !== 'patient_id');
    const key = (r: Record<string, unknown>) => JSON.stringify(shared.map((c) => r[c] ?? null));
    expect(got.length).toBeGreaterThan(50);
    expect(got.map(key).sort()).toEqual(want.map(key).sort());
    // patient_id: the reader's key; the ViewDefinition's getReferenceKey(Patient) agrees on Patient/<id>.
    const byId = new Map(want.map((r) => [r.id, r.patient_id]));
    for (const r of got.filter((x) => byId.get(x.id) !== undefined && byId.get(x.id) !== null)) expect(r.patient_id, String(r.id)).toBe(byId.get(r.id));
  });

  it('medications: one list of codings per record where the ViewDefinition has one row per coding', async () => {
    const text = (await readFile(join(dir, 'MedicationRequest.ndjson'), 'utf8')) + (await readFile(join(dir, 'MedicationStatement.ndjson'), 'utf8'));
    const resources = lines(text);
    const want = [...evaluateView(VIEW_DEFINITIONS.medicationRequest, resources), ...evaluateView(VIEW_DEFINITIONS.medicationStatement, resources)];
    const got = await flattened('medication', FLAT_MEDICATION_COLUMNS);
    const unnested = got.flatMap((r) => {
      // A contained Medication is resolved here; the ViewDefinition cannot follow the reference.
      const inline = r.medication_reference === null ? ((r.medication_coding as Record<string, unknown>[] | null) ?? [null]) : [null];
      return inline.map((c) => JSON.stringify([r.id, r.patient_id, r.status, r.period_end, r.medication_reference === null ? r.medication_text : null, r.medication_reference, c?.system ?? null, c?.code ?? null, c?.display ?? null]));
    });
    const viewRows = want.map((r) => JSON.stringify([r.id, r.patient_id, r.status, r.period_end ?? null, r.medication_text ?? null, r.medication_reference ?? null, r.code_system ?? null, r.code ?? null, r.code_display ?? null]));
    expect(unnested.sort()).toEqual(viewRows.sort());
    expect(got.find((r) => r.patient_id === 'e-contained-treated')).toMatchObject({ medication_reference: '#m', medication_unresolved: false, medication_coding: [{ code: '46041' }] });
    expect(got.find((r) => r.patient_id === 'e-contained-missing')).toMatchObject({ medication_unresolved: true, medication_coding: null });
  });
});

describe('DuckDB engine input', () => {
  it('reads gzipped NDJSON (Observation.ndjson.gz) to the same rows', async () => {
    const gz = join(dir, 'gz');
    await mkdir(gz);
    for (const name of ['Observation', 'MedicationRequest', 'MedicationStatement', 'extra']) {
      await writeFile(join(gz, `${name}.ndjson.gz`), gzipSync(await readFile(join(dir, `${name}.ndjson`))));
    }
    const query = { untreated: true, asOf: AS_OF };
    const plain = await runCohortSql({ kind: 'ndjson', files, label: 'x' }, query);
    const zipped = await runCohortSql({ kind: 'ndjson', files: await ndjsonFiles(gz, COHORT_RESOURCE_TYPES), label: 'x' }, query);
    expect(zipped.rows.map((r) => [r.patient, r.latestVbmdMgCm3, r.therapy])).toEqual(plain.rows.map((r) => [r.patient, r.latestVbmdMgCm3, r.therapy]));
    expect(zipped.summary.skipped).toEqual(plain.summary.skipped);
  });
});

describe('DuckDB engine rows handed over as they come', () => {
  it('onRows gets the same rows in the same order and the result holds none', async () => {
    const query = { untreated: true, asOf: AS_OF };
    const whole = await runCohortSql({ kind: 'ndjson', files, label: 'x' }, query);
    const chunks: string[][] = [];
    const streamed = await runCohortSql({ kind: 'ndjson', files, label: 'x' }, query, { onRows: (rows) => void chunks.push(rows.map((r) => r.patient)) });
    expect(streamed.rows).toEqual([]);
    expect(chunks.flat()).toEqual(whole.rows.map((r) => r.patient));
    expect(streamed.summary.matched).toBe(whole.rows.length);
    expect(streamed.summary.matchedByCategory).toEqual(whole.summary.matchedByCategory);
  });

  it('a CSV file is written as FILE.part and renamed when complete; removed when the run fails', async () => {
    const rows = (await runCohortSql({ kind: 'ndjson', files, label: 'x' }, { asOf: AS_OF })).rows;
    const path = join(dir, 'rows.csv');
    const sink = new RowSink('csv', { path });
    await sink.write(rows.slice(0, 3));
    await expect(readFile(path)).rejects.toThrow();
    await sink.write(rows.slice(3));
    await sink.finish();
    const lines = (await readFile(path, 'utf8')).trim().split('\r\n');
    expect(lines.length).toBe(rows.length + 1);
    expect(lines[0]!.startsWith('patient_id,')).toBe(true);

    const failed = new RowSink('ndjson', { path: join(dir, 'failed.ndjson') });
    await failed.write(rows.slice(0, 3));
    await failed.abort();
    await expect(readFile(join(dir, 'failed.ndjson.part'))).rejects.toThrow();
    await expect(readFile(join(dir, 'failed.ndjson'))).rejects.toThrow();
    const nowhere = new RowSink('csv', { path: join(dir, 'no-such-folder', 'x.csv') });
    await expect(nowhere.write(rows).then(() => nowhere.finish())).rejects.toThrow(/Cannot write .*x\.csv/);
  });
});

describe('DuckDB engine failures', () => {
  it('a line that is not JSON stops the run with its file named, and leaves no stage behind', async () => {
    const bad = join(dir, 'bad');
    await mkdir(bad);
    await writeFile(join(bad, 'Observation.ndjson'), await readFile(join(dir, 'Observation.ndjson'), 'utf8'));
    await appendFile(join(bad, 'Observation.ndjson'), '{"resourceType": "Observation", oops\n');
    const stage = join(bad, 'stage');
    const err = await runCohortSql({ kind: 'ndjson', files: [join(bad, 'Observation.ndjson')], label: 'bad', stageDir: stage }, { asOf: AS_OF }).catch((e: unknown) => e);
    expect(isVbmdError(err) && err.code).toBe('bad-input');
    expect((err as Error).message).toMatch(/Malformed JSON in file ".*bad\/Observation\.ndjson"/);
    await expect(readFile(join(stage, 'stage.json'))).rejects.toThrow();
  });

  it('refuses to stage into a folder that is not empty, and a stage written under other rules', async () => {
    const full = join(dir, 'full');
    await mkdir(full);
    await writeFile(join(full, 'keep.txt'), 'mine');
    await expect(runCohortSql({ kind: 'ndjson', files, label: 'x', stageDir: full }, { asOf: AS_OF })).rejects.toThrow(/is not empty/);
    expect(await readFile(join(full, 'keep.txt'), 'utf8')).toBe('mine');

    const stage = join(dir, 'old-stage');
    await runCohortSql({ kind: 'ndjson', files, label: 'x', stageDir: stage }, { asOf: AS_OF });
    const manifest = JSON.parse(await readFile(join(stage, 'stage.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(stage, 'stage.json'), JSON.stringify({ ...manifest, rules: 'another version' }));
    await expect(runCohortSql({ kind: 'parquet', dir: stage, label: 'x' }, { asOf: AS_OF })).rejects.toThrow(/written under other result rules/);
    await expect(runCohortSql({ kind: 'parquet', dir: join(dir, 'nowhere'), label: 'x' }, { asOf: AS_OF })).rejects.toThrow(/is not a Parquet stage/);
  });

  it('refuses a memory limit it cannot read, and stops when cancelled', async () => {
    await expect(runCohortSql({ kind: 'ndjson', files, label: 'x' }, {}, { duckdb: { memoryLimit: 'lots' } })).rejects.toThrow(/memory limit must look like/);
    const controller = new AbortController();
    controller.abort();
    await expect(runCohortSql({ kind: 'ndjson', files, label: 'x' }, {}, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});
