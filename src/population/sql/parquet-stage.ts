import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { VbmdError } from '../../util/errors.js';
import { readingSql } from './cohort-rules.js';
import type { DuckDbSession } from './duckdb-session.js';
import { duckDbError } from './duckdb-session.js';
import { flattenSql, readNdjsonSql } from './flatten.js';
import { sqlString } from './sql-literals.js';

/**
 * A Parquet stage of an NDJSON export: one row per resource, the ViewDefinition columns of flatten.ts as
 * the result reader reads them (cohort-rules.ts readingSql), written in one pass over the JSON. Every DuckDB
 * cohort over NDJSON stages into its temporary folder first; `--stage-parquet DIR` keeps the stage, and
 * `--source parquet:DIR` queries it again without parsing JSON or text (the 5M bench: seconds instead of
 * the JSON parse). stage.json names the SQL that wrote it: a stage written under other rules is refused
 * (stage again) rather than answered by rules that are no longer the reader's.
 */
export const STAGE_FORMAT = 'vbmd-cohort-stage';
const STAGE_FILE = 'resources.parquet';
const REANALYSED_FILE = 'reanalysed.parquet';
const MANIFEST = 'stage.json';

const manifestSchema = z.object({
  format: z.literal(STAGE_FORMAT),
  /** sha256 of the flattening and reading SQL that wrote the stage. */
  rules: z.string(),
  sources: z.array(z.string()),
  createdAt: z.string(),
  rows: z.number().int().nonnegative(),
});
export type StageManifest = z.infer<typeof manifestSchema>;

function stageSql(files: readonly string[]): string {
  return readingSql(flattenSql(readNdjsonSql(files)));
}

/** Study keys found more than once among the results of a reading (cohort-rules.ts readingSql): computed
 * once per stage instead of in each query. */
export function reanalysedSql(reading: string): string {
  return `SELECT study_key FROM ${reading} WHERE reason IS NULL AND study_key IS NOT NULL GROUP BY study_key HAVING count(*) > 1`;
}

/** The rules the stage was written with, independent of the files read. */
export function stageRulesHash(): string {
  return createHash('sha256').update(stageSql(['FILES'])).update(reanalysedSql('STAGE')).digest('hex');
}

/** What the cohort reads from a stage folder: every resource's reading, and the study keys that occur more
 * than once among the results (re-analyses: the only rows supersession has to rank). */
export function stageSourceSql(dir: string): { resources: string; reanalysed: string } {
  return {
    resources: `read_parquet(${sqlString(join(resolve(dir), STAGE_FILE))}, file_row_number = true)`,
    reanalysed: `read_parquet(${sqlString(join(resolve(dir), REANALYSED_FILE))})`,
  };
}

/** Stages the NDJSON files in `dir` (absent or empty: a stage never overwrites anything). */
export async function writeParquetStage(db: DuckDbSession, files: readonly string[], dir: string): Promise<StageManifest> {
  if (existsSync(dir) && (await readdir(dir)).length > 0) {
    throw new VbmdError('bad-input', `The Parquet stage folder ${dir} is not empty; give a new or empty folder.`);
  }
  await mkdir(dir, { recursive: true });
  const file = join(resolve(dir), STAGE_FILE);
  try {
    // snappy: writing 1M Observations cost 1.5 s of CPU against 1.9 s with zstd; the stage is about 2% of
    // the NDJSON (198 MiB for the 8.2 GiB of the 5M bench) either way.
    await db.run(`COPY (${stageSql(files)}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION snappy)`);
  } catch (e) {
    throw duckDbError(e, 'Reading the NDJSON files');
  }
  await db.run(`COPY (${reanalysedSql(`read_parquet(${sqlString(file)})`)}) TO ${sqlString(join(resolve(dir), REANALYSED_FILE))} (FORMAT parquet)`);
  const [[rows]] = (await db.rows(`SELECT count(*) FROM read_parquet(${sqlString(file)})`)) as [[unknown]];
  const manifest: StageManifest = {
    format: STAGE_FORMAT,
    rules: stageRulesHash(),
    sources: files.map((f) => resolve(f)),
    createdAt: new Date().toISOString(),
    rows: Number(rows),
  };
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

export async function readStageManifest(dir: string): Promise<StageManifest> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), 'utf8');
  } catch {
    throw new VbmdError('not-found', `${dir} is not a Parquet stage (no ${MANIFEST}); make one with vbmd cohort --source ndjson:DIR --stage-parquet ${dir}.`);
  }
  let parsed;
  try {
    parsed = manifestSchema.safeParse(JSON.parse(text));
  } catch {
    parsed = null;
  }
  if (!parsed?.success) throw new VbmdError('bad-input', `${join(dir, MANIFEST)} is not a vbmd cohort stage manifest.`);
  if (parsed.data.rules !== stageRulesHash()) {
    throw new VbmdError('bad-input', `The Parquet stage ${dir} was written under other result rules (another vbmd version); stage the NDJSON again.`);
  }
  if (!existsSync(join(dir, STAGE_FILE)) || !existsSync(join(dir, REANALYSED_FILE))) throw new VbmdError('not-found', `The Parquet stage ${dir} has no ${STAGE_FILE}; stage the NDJSON again.`);
  return parsed.data;
}
