import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VbmdError } from '../util/errors.js';
import type { CohortRow } from './aggregate.js';
import type { CohortQuery, CohortResult } from './query.js';
import { runCohort } from './query.js';
import { COHORT_RESOURCE_TYPES } from './resources.js';
import { BulkExportSource } from './sources/bulk-export.js';
import { ndjsonFiles } from './sources/ndjson-dir.js';
import type { SourceFactoryOptions } from './sources/parse-source.js';
import { parseSourceSpec } from './sources/parse-source.js';
import type { DuckDbSettings } from './sql/duckdb-session.js';
import { runCohortSql } from './sql/run-cohort-sql.js';
import type { TherapyMatcher } from './therapy-value-set.js';

/**
 * Which engine answers a cohort query. Files go to DuckDB: `ndjson:` folders, `bulk:` exports (downloaded
 * to disk first) and `parquet:` stages; it reads declared columns, stages Parquet, and spills to disk, so
 * neither the number of scans nor of patients is held in memory. A `fhir:` search is paged and answered by
 * the streaming engine (one small record per patient, results as pages arrive), as is the HTTP API. Both
 * engines apply the same rules and give the same rows (test/population/engines-agree.test.ts).
 */
export const COHORT_ENGINES = ['auto', 'stream', 'duckdb'] as const;
export type CohortEngineChoice = (typeof COHORT_ENGINES)[number];
export type CohortEngine = Exclude<CohortEngineChoice, 'auto'>;

export interface CohortRunRequest {
  /** fhir:URL | bulk:URL | ndjson:DIR | parquet:DIR */
  spec: string;
  engine: CohortEngineChoice;
  query: CohortQuery;
  matcher: TherapyMatcher;
  sourceOptions?: SourceFactoryOptions;
  /** Keep the Parquet stage of an ndjson:/bulk: run here (DuckDB only). */
  stageParquet?: string;
  duckdb?: DuckDbSettings;
  signal?: AbortSignal;
  /** One line of progress ("reading NDJSON 42%", "page 12: 6,000 resources, 800 patients"). */
  onProgress?: (line: string) => void;
  /** Take the matched rows in order, in chunks, instead of in the result (see runCohortSql). */
  onRows?: (rows: readonly CohortRow[]) => void | Promise<void>;
}

const KIND = /^(fhir|bulk|ndjson|parquet):(.+)$/;

/** The engine for a source: DuckDB for files, streaming for FHIR search; an explicit choice is checked. */
export function engineFor(spec: string, choice: CohortEngineChoice): CohortEngine {
  const kind = KIND.exec(spec.trim())?.[1];
  if (!kind) throw new VbmdError('bad-input', `--source must be fhir:URL, bulk:URL, ndjson:DIR or parquet:DIR (got "${spec.slice(0, 80)}").`);
  if (choice === 'auto') return kind === 'fhir' ? 'stream' : 'duckdb';
  if (choice === 'stream' && kind === 'parquet') throw new VbmdError('bad-input', 'A parquet: stage is read by the DuckDB engine; drop --engine stream.');
  if (choice === 'duckdb' && kind === 'fhir') {
    throw new VbmdError('bad-input', 'The DuckDB engine reads files; a fhir: search is read by the streaming engine (or use bulk: to export the data first).');
  }
  return choice;
}

function percent(stage: string, fraction: number): string {
  return fraction >= 0 ? `${stage} ${Math.round(fraction * 100)}%` : stage;
}

/** Runs the query on the engine the request names or implies. */
export async function runCohortWith(req: CohortRunRequest): Promise<CohortResult> {
  const engine = engineFor(req.spec, req.engine);
  const [, kind, rest] = KIND.exec(req.spec.trim())!;
  if (req.stageParquet && (engine !== 'duckdb' || kind === 'parquet')) {
    throw new VbmdError('bad-input', '--stage-parquet stages an ndjson: or bulk: source for the DuckDB engine.');
  }
  if (engine === 'stream') {
    const source = parseSourceSpec(req.spec, req.sourceOptions);
    const result = await runCohort(source, req.query, {
      matcher: req.matcher,
      signal: req.signal,
      onProgress: req.onProgress && ((p) => req.onProgress!(`${p.stage}: ${p.resources.toLocaleString('en')} resources, ${p.patients.toLocaleString('en')} patients`)),
    });
    if (!req.onRows) return result;
    // The streaming engine holds its rows anyway (one record per patient); hand them over the same way.
    await req.onRows(result.rows);
    return { ...result, rows: [] };
  }
  const sqlOptions = {
    matcher: req.matcher,
    signal: req.signal,
    duckdb: req.duckdb,
    onProgress: req.onProgress && ((stage: string, fraction: number) => req.onProgress!(percent(stage, fraction))),
    onRows: req.onRows,
  };
  const label = `${kind}:${rest}`;
  if (kind === 'parquet') return runCohortSql({ kind: 'parquet', dir: rest!, label }, req.query, sqlOptions);
  if (kind === 'ndjson') {
    const files = await ndjsonFiles(rest!, COHORT_RESOURCE_TYPES);
    return runCohortSql({ kind: 'ndjson', files, label, stageDir: req.stageParquet }, req.query, sqlOptions);
  }
  // bulk: the export's files are downloaded to disk, read by DuckDB, then removed.
  const source = parseSourceSpec(req.spec, req.sourceOptions) as BulkExportSource;
  const dir = await mkdtemp(join(req.duckdb?.tempRoot ?? tmpdir(), 'vbmd-bulk-'));
  try {
    const files = await source.downloadTo(dir, COHORT_RESOURCE_TYPES, { signal: req.signal, onProgress: req.onProgress });
    return await runCohortSql({ kind: 'ndjson', files, label: source.label, stageDir: req.stageParquet }, req.query, sqlOptions);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
