import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { VbmdError } from '../../util/errors.js';
import { sqlString } from './sql-literals.js';

/**
 * One DuckDB for one cohort run, with its own temporary folder (removed on close) for the operators' spill
 * files and the run's intermediate results, which are Parquet files there (`materialize`), never tables
 * held in memory: the run is bounded by `memoryLimit`, not by the number of patients or scans (an in-memory
 * table of all patients failed at a 128 MB limit; the same rows COPYed to Parquet did not). json, parquet
 * and icu are statically linked in @duckdb/node-bindings; extension autoloading and autoinstalling are off,
 * so a run never downloads anything.
 */
export interface DuckDbSettings {
  /** DuckDB memory_limit, e.g. '512MB' (its buffer pool: the process adds Node's own ~100 MB). */
  memoryLimit?: string;
  threads?: number;
  /** Parent folder of the run's database and spill files (default: the OS temp folder). */
  tempRoot?: string;
}

export const DEFAULT_DUCKDB_MEMORY_LIMIT = '512MB';

export interface DuckDbSession {
  readonly dir: string;
  run(sql: string): Promise<void>;
  /** Writes the rows of `sql` to a Parquet file in the run's folder and makes `name` a view of it. */
  materialize(name: string, sql: string): Promise<void>;
  /** All rows as JS values (BIGINT as bigint); for small results. */
  rows(sql: string): Promise<unknown[][]>;
  /** Rows in chunks of up to 2048, fetched as they are consumed. */
  stream(sql: string): AsyncGenerator<unknown[][]>;
  /** Fraction done (0..1) of the running statement, -1 when unknown. */
  progress(): number;
  interrupt(): void;
  close(): Promise<void>;
}

const MEMORY_LIMIT = /^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i;

export async function openDuckDb(settings: DuckDbSettings = {}): Promise<DuckDbSession> {
  const memoryLimit = settings.memoryLimit ?? DEFAULT_DUCKDB_MEMORY_LIMIT;
  if (!MEMORY_LIMIT.test(memoryLimit)) throw new VbmdError('bad-input', `The DuckDB memory limit must look like 512MB or 2GB (got "${memoryLimit}").`);
  const threads = settings.threads ?? availableParallelism();
  let api: typeof import('@duckdb/node-api');
  try {
    api = await import('@duckdb/node-api');
  } catch (e) {
    throw new VbmdError('unsupported', `The DuckDB engine needs @duckdb/node-api and its binary for ${process.platform}-${process.arch} (npm install); run with --engine stream meanwhile.`, {}, { cause: e });
  }
  const dir = await mkdtemp(join(settings.tempRoot ?? tmpdir(), 'vbmd-duckdb-'));
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection;
  try {
    instance = await api.DuckDBInstance.create(':memory:', {
      memory_limit: memoryLimit,
      threads: String(threads),
      temp_directory: join(dir, 'spill'),
      preserve_insertion_order: 'false',
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    connection = await instance.connect();
    // Only strftime of a month reads a zone; UTC keeps it independent of the machine.
    await connection.run(`SET TimeZone = 'UTC'`);
  } catch (e) {
    instance?.closeSync();
    await rm(dir, { recursive: true, force: true });
    throw new VbmdError('config', `DuckDB could not start in ${dir}: ${firstLine(e)}.`, {}, { cause: e });
  }
  let closed = false;
  return {
    dir,
    async run(sql) {
      await connection.run(sql);
    },
    async materialize(name, sql) {
      const file = join(dir, `${name}.parquet`);
      await connection.run(`COPY (${sql}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION snappy)`);
      await connection.run(`CREATE OR REPLACE VIEW ${name} AS SELECT * FROM read_parquet(${sqlString(file)})`);
    },
    async rows(sql) {
      const reader = await connection.runAndReadAll(sql);
      return reader.getRowsJS() as unknown[][];
    },
    async *stream(sql) {
      const result = await connection.stream(sql);
      for await (const rows of result.yieldRowsJs()) yield rows as unknown[][];
    },
    progress() {
      const p = connection.progress;
      return p.percentage >= 0 ? p.percentage / 100 : -1;
    },
    interrupt() {
      connection.interrupt();
    },
    async close() {
      if (closed) return;
      closed = true;
      connection.closeSync();
      instance?.closeSync();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
}

/** A DuckDB failure as a sentence a person can act on (the file and line for bad input, the limit for
 * memory), or the error itself when it is a fault of this code. */
export function duckDbError(e: unknown, what: string): unknown {
  if (e instanceof VbmdError) return e;
  const line = firstLine(e);
  if (/Malformed JSON|JSON transform error|Invalid Input Error/.test(line)) {
    return new VbmdError('bad-input', `${what}: ${line.replace(/^Invalid Input Error:\s*/, '')}. Fix or remove that line; --engine stream reads resources of the wrong shape as 'invalid' and goes on.`, {}, { cause: e });
  }
  if (/Out of Memory Error|could not allocate|No space left/i.test(line)) {
    return new VbmdError('config', `${what}: ${line}. Raise --duckdb-memory or free disk in the temporary folder.`, {}, { cause: e });
  }
  if (/INTERRUPT/i.test(line)) return new VbmdError('cancelled', `${what} was interrupted.`, {}, { cause: e });
  if (/IO Error/.test(line)) return new VbmdError('not-found', `${what}: ${line}.`, {}, { cause: e });
  return e;
}
