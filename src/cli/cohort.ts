import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type { Command } from 'commander';
import { Option } from 'commander';
import { config } from '../config.js';
import { VbmdError } from '../util/errors.js';
import type { CohortFormat } from '../population/output/index.js';
import { COHORT_FORMATS, cohortHistogramSvg, cohortOutput, summaryLines } from '../population/output/index.js';
import type { CohortEngineChoice } from '../population/engine.js';
import { COHORT_ENGINES, runCohortWith } from '../population/engine.js';
import type { CohortRow } from '../population/aggregate.js';
import { RowSink } from '../population/output/row-sink.js';
import type { CohortQuery } from '../population/query.js';
import { cohortAuthFromConfig, cohortBackendServicesFromConfig } from '../population/source-auth.js';
import { compileTherapyValueSet, defaultTherapyValueSet, loadTherapyValueSet } from '../population/therapy-value-set.js';
import { COMMAND_SUMMARIES } from './summaries.js';

interface CohortFlags {
  source: string;
  format?: CohortFormat;
  out?: string;
  category?: CohortQuery['category'];
  untreated?: boolean;
  declining?: string;
  since?: string;
  until?: string;
  asOf?: string;
  histogram?: string;
  valueSet?: string;
  pageSize?: string;
  typeFilter?: boolean;
  engine: CohortEngineChoice;
  stageParquet?: string;
  duckdbMemory?: string;
  duckdbTemp?: string;
}

async function writeChunks(out: Writable, chunks: Iterable<string>): Promise<void> {
  for (const c of chunks) {
    if (!out.write(c)) await once(out, 'drain');
  }
}

function positiveNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new VbmdError('bad-input', `${flag} needs a positive number (got "${v}").`);
  return n;
}

/** `vbmd cohort`: population query over summary vBMD Observations and bone-therapy medications. */
export function registerCohort(program: Command): void {
  program
    .command('cohort')
    .description(COMMAND_SUMMARIES.cohort)
    .requiredOption('--source <spec>', 'fhir:URL (FHIR search, paged) | bulk:URL (Bulk Data $export) | ndjson:DIR (folder of .ndjson) | parquet:DIR (a --stage-parquet folder)')
    .addOption(new Option('--engine <engine>', 'auto: DuckDB for ndjson:/bulk:/parquet:, streaming for fhir:').choices([...COHORT_ENGINES]).default('auto'))
    .option('--stage-parquet <dir>', 'DuckDB: keep the Parquet stage of an ndjson:/bulk: source here; query it later with --source parquet:DIR')
    .option('--duckdb-memory <size>', 'DuckDB memory limit (beyond it, DuckDB spills to its temporary folder)', '512MB')
    .option('--duckdb-temp <dir>', 'DuckDB: parent folder for spill files, the stage and downloaded exports (default: the OS temp folder)')
    .addOption(new Option('--format <format>', 'output format (default: table on a terminal, csv otherwise)').choices([...COHORT_FORMATS]))
    .option('--out <file>', 'write the rows here instead of stdout')
    .addOption(new Option('--category <category>', 'latest vBMD category').choices(['osteoporosis', 'osteopenia', 'normal', 'indeterminate']))
    .option('--untreated', 'only patients with no active bone-targeted therapy on record')
    .option('--declining <pctPerYear>', 'only patients losing at least this many % per year (least squares over the 3 years up to the latest scan, >= 2 scans over >= 6 months, and a decline beyond the least significant change)')
    .option('--since <date>', 'only scans on or after this date (YYYY-MM-DD or dateTime with zone)')
    .option('--until <date>', 'only scans on or before this date (a date includes its whole day)')
    .option('--as-of <date>', 'reference time for "active" therapy (default now)')
    .option('--histogram <file.svg>', 'write a histogram of the latest vBMD of the matched patients as SVG')
    .option('--value-set <file.json>', 'bone-targeted therapy value set (default: COHORT_THERAPY_VALUE_SET_FILE or the built-in one)')
    .option('--page-size <n>', 'FHIR search page size (_count)', '500')
    .option('--type-filter', 'bulk: ask the server to export only vBMD Observations (_typeFilter; optional server feature)')
    .action(runCohortCommand);
}

type CohortRun = Parameters<typeof runCohortWith>[0];
type CohortResult = Awaited<ReturnType<typeof runCohortWith>>;

/** The flags and the configuration turned into the query's numbers, the therapy matcher and the source's options. */
async function cohortInputs(flags: CohortFlags): Promise<{ declining: number | undefined; matcher: CohortRun['matcher']; sourceOptions: CohortRun['sourceOptions'] }> {
  const cfg = config();
  const declining = positiveNumber('--declining', flags.declining);
  const pageSize = positiveNumber('--page-size', flags.pageSize);
  const valueSetFile = flags.valueSet ?? cfg.COHORT_THERAPY_VALUE_SET_FILE;
  const matcher = compileTherapyValueSet(valueSetFile ? await loadTherapyValueSet(valueSetFile) : defaultTherapyValueSet());
  const url = flags.source.replace(/^(fhir|bulk):/, '');
  const sourceOptions = {
    auth: /^(fhir|bulk):/.test(flags.source) ? cohortAuthFromConfig(cfg, url, cohortBackendServicesFromConfig(cfg)) : undefined,
    search: { pageSize: pageSize ? Math.floor(pageSize) : undefined },
    bulk: { typeFilter: flags.typeFilter === true },
  };
  return { declining, matcher, sourceOptions };
}

async function runCohortCommand(flags: CohortFlags): Promise<void> {
  const { declining, matcher, sourceOptions } = await cohortInputs(flags);
  const tty = process.stderr.isTTY === true;
  const progress = tty ? (line: string) => process.stderr.write(`\r\x1b[K${line}`) : undefined;
  const format: CohortFormat = flags.format ?? (flags.out || !process.stdout.isTTY ? 'csv' : 'table');
  // CSV and NDJSON rows are written as they come (a cohort of millions is never held); the other formats
  // need every row first.
  const sink = format === 'csv' || format === 'ndjson' ? new RowSink(format, flags.out ? { path: flags.out } : { stream: process.stdout }) : undefined;
  const histogramRows: Pick<CohortRow, 'latestVbmdMgCm3'>[] = [];
  const onRows = sink
    ? async (rows: readonly CohortRow[]) => {
        await sink.write(rows);
        if (flags.histogram) for (const r of rows) histogramRows.push({ latestVbmdMgCm3: r.latestVbmdMgCm3 });
      }
    : undefined;
  const run: Omit<CohortRun, 'signal'> = {
    spec: flags.source,
    engine: flags.engine,
    query: { category: flags.category, untreated: flags.untreated === true, decliningPctPerYear: declining, since: flags.since, until: flags.until, asOf: flags.asOf },
    matcher,
    sourceOptions,
    stageParquet: flags.stageParquet,
    duckdb: { memoryLimit: flags.duckdbMemory, tempRoot: flags.duckdbTemp },
    onProgress: progress,
    onRows,
  };
  const result = await runInterruptible(run, flags, sink, tty);
  if (!sink) await writeAllRows(result, format, flags.out);
  if (flags.histogram) {
    try {
      await writeFile(flags.histogram, cohortHistogramSvg(sink ? histogramRows : result.rows, result.summary));
    } catch (e) {
      throw new VbmdError('bad-input', `Cannot write the histogram ${flags.histogram}: ${(e as Error).message}.`);
    }
  }
  // The counts go to stderr whenever stdout carries machine-readable rows, so pipes stay clean.
  if (format !== 'table' || flags.out) for (const line of summaryLines(result.summary)) process.stderr.write(line);
}

/** Runs the query with Ctrl-C as its abort signal; the streamed rows' sink is finished, or dropped on failure. */
async function runInterruptible(run: Omit<CohortRun, 'signal'>, flags: CohortFlags, sink: RowSink | undefined, tty: boolean): Promise<CohortResult> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  try {
    const result = await runCohortWith({ ...run, signal: controller.signal });
    await sink?.finish();
    return result;
  } catch (e) {
    await sink?.abort();
    if (controller.signal.aborted) throw new VbmdError('cancelled', `Cohort query interrupted${flags.out ? `; ${flags.out} was not written` : ''}.`);
    throw e;
  } finally {
    process.off('SIGINT', stop);
    if (tty) process.stderr.write('\r\x1b[K');
  }
}

/** The formats that need every row first: written to the file (or stdout) once the query is done. */
async function writeAllRows(result: CohortResult, format: CohortFormat, out: string | undefined): Promise<void> {
  if (out) {
    const file = createWriteStream(out);
    const failed = new Promise<never>((_, reject) =>
      file.once('error', (err) => reject(new VbmdError('bad-input', `Cannot write ${out}: ${err.message}.`))),
    );
    await Promise.race([
      (async () => {
        await writeChunks(file, cohortOutput(result, format));
        file.end();
        await once(file, 'finish');
      })(),
      failed,
    ]);
  } else {
    await writeChunks(process.stdout, cohortOutput(result, format));
  }
}
