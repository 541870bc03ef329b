import type { Command } from 'commander';
import { config, serviceMode } from '../config.js';
import type { EnvConfig } from '../config.js';
import { SOFTWARE } from '../analysis/run-analysis.js';
import { parseByteRate, readLimits, updateLimits } from '../backfill/limits.js';
import type { BackfillLimits } from '../backfill/limits.js';
import type { BackfillProgress } from '../backfill/progress.js';
import { runBackfill } from '../backfill/run-backfill.js';
import type { BackfillResult } from '../backfill/run-backfill.js';
import type { Algorithm } from '../backfill/study-check.js';
import { dicomWebSourceFromConfig } from '../dicom/dicomweb/from-config.js';
import { fhirClientFromConfig } from '../fhir/client-config.js';
import { openStores } from '../jobs/stores.js';
import { jobRetryPolicy } from '../jobs/queue.js';
import { DEFAULT_MODEL_FILE, verifyModelFile } from '../model/model-file.js';
import { VbmdError } from '../util/errors.js';
import { COMMAND_SUMMARIES } from './summaries.js';

/**
 * `vbmd backfill --from 2019-01-01 --to 2026-12-31 [--modality CT] [--body-part CHEST,ABDOMEN] [--dry-run]
 * [--json]`: queue the archive's studies for analysis (src/backfill/run-backfill.ts) into the queue the
 * service's workers take from (the same VBMD_DATA_DIR or REDIS_URL), and follow them to the end. A progress
 * bar on a terminal, a one-line summary at the end, `--json` for machines. Ctrl-C stops queueing; what was
 * queued runs on and a re-run resumes. `--max-retrievals` / `--max-rate` set the PACS limits (kept in the
 * store, read by every worker within a second: they can be changed from another shell while this runs,
 * with `vbmd backfill --set-limits ...` or PUT /api/backfill/limits).
 */
interface BackfillFlags {
  from?: string;
  to?: string;
  modality: string;
  bodyPart?: string;
  dryRun?: boolean;
  json?: boolean;
  window: string;
  maxRetrievals?: string;
  maxRate?: string;
  setLimits?: boolean;
}

function limitChange(f: BackfillFlags): Partial<BackfillLimits> {
  const change: Partial<BackfillLimits> = {};
  if (f.maxRetrievals !== undefined) {
    const n = Number(f.maxRetrievals);
    if (f.maxRetrievals !== 'none' && !(Number.isInteger(n) && n >= 1)) throw new VbmdError('bad-input', `--max-retrievals needs a whole number >= 1 or "none" (got "${f.maxRetrievals}").`);
    change.maxConcurrentRetrievals = f.maxRetrievals === 'none' ? null : n;
  }
  if (f.maxRate !== undefined) change.maxBytesPerSecond = f.maxRate === 'none' ? null : parseByteRate(f.maxRate);
  return change;
}

async function currentAlgorithm(cfg: EnvConfig): Promise<Algorithm> {
  const model = cfg.VBMD_MODEL ? await verifyModelFile(cfg.VBMD_MODEL_FILE ?? DEFAULT_MODEL_FILE) : null;
  return { engine: { name: SOFTWARE.name, version: SOFTWARE.version }, model: model ? { name: model.name, version: model.version, sha256: model.sha256 } : null };
}

const formatLimits = (l: BackfillLimits): string =>
  `at most ${l.maxConcurrentRetrievals ?? 'unlimited'} concurrent retrievals, ${l.maxBytesPerSecond === null ? 'no byte-rate cap' : `${(l.maxBytesPerSecond / 1024 ** 2).toFixed(1)} MiB/s`}`;

function duration(s: number | null): string {
  if (s === null) return '--';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** One line: counts, rate, ETA (and a bar of finished vs known work). */
export function progressLine(p: BackfillProgress, width = 20): string {
  const c = p.counts;
  const finished = c.done + c.failed + c.needsReview;
  const work = Math.max(1, c.found - c.skipped - c.unusable);
  const filled = Math.min(width, Math.round((finished / work) * width));
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  return `${bar} done ${c.done}  queued ${c.queued}  failed ${c.failed}  needs-review ${c.needsReview}  skipped ${c.skipped}  unusable ${c.unusable}  of ${c.found}${p.listing ? '+' : ''}  ${p.ratePerMinute.toFixed(1)}/min  ETA ${p.listing ? '~' : ''}${duration(p.etaSeconds)}`;
}

export function summaryLine(r: BackfillResult): string {
  const c = r.counts;
  if (r.dryRun) return `backfill ${r.from}..${r.to} (dry run): ${c.found} studies found, ${r.wouldQueue} would be queued, ${c.skipped} already analysed or queued, ${c.unusable} without a usable series.`;
  const head = r.interrupted ? 'backfill interrupted (re-run to resume)' : 'backfill finished';
  return `${head} ${r.from}..${r.to}: ${c.found} found, ${c.done} analysed, ${c.needsReview} held for review, ${c.failed} failed, ${c.queued} still queued, ${c.skipped} skipped (done before), ${c.unusable} without a usable series; ${r.ratePerMinute.toFixed(1)} studies/min.`;
}

async function runCommand(f: BackfillFlags): Promise<void> {
  const cfg = config();
  if (serviceMode(cfg) !== 'production' || !cfg.DICOMWEB_URL) {
    throw new VbmdError('config', 'vbmd backfill reads the PACS and the EHR: set DICOMWEB_URL and FHIR_BASE_URL (and the rest of the production settings) as for vbmd start.');
  }
  const stores = openStores({ dataDir: cfg.VBMD_DATA_DIR, ...(cfg.REDIS_URL ? { redisUrl: cfg.REDIS_URL } : {}), retry: jobRetryPolicy(cfg), requireRedisPersistence: cfg.REDIS_REQUIRE_PERSISTENCE });
  const source = dicomWebSourceFromConfig(cfg)!;
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    await stores.start();
    const change = limitChange(f);
    const limits = Object.keys(change).length > 0 ? await updateLimits(stores.settings, change) : await readLimits(stores.settings);
    if (f.setLimits) {
      process.stdout.write(f.json ? `${JSON.stringify(limits)}\n` : `Backfill limits: ${formatLimits(limits)}.\n`);
      return;
    }
    if (!f.from || !f.to) throw new VbmdError('bad-input', 'Say which studies: --from YYYY-MM-DD --to YYYY-MM-DD.');
    const tty = process.stderr.isTTY === true && !f.json;
    if (!f.json) process.stderr.write(`Backfill limits: ${formatLimits(limits)}.\n`);
    let lastLine = 0;
    const result = await runBackfill(
      { dicom: source.client, fhir: fhirClientFromConfig(cfg), queue: stores.queue, settings: stores.settings, algorithm: await currentAlgorithm(cfg) },
      {
        from: f.from,
        to: f.to,
        modality: f.modality,
        ...(f.bodyPart ? { bodyParts: f.bodyPart.split(',').map((b) => b.trim()).filter(Boolean) } : {}),
        dryRun: f.dryRun === true,
        window: Math.max(1, Number(f.window) || 64),
        signal: abort.signal,
        onProgress: (p) => {
          if (tty) process.stderr.write(`\r\x1b[K${progressLine(p)}`);
          else if (!f.json && Date.now() - lastLine > 10_000) {
            lastLine = Date.now();
            process.stderr.write(`${progressLine(p)}\n`);
          }
        },
      },
    );
    if (tty) process.stderr.write('\n');
    process.stdout.write(f.json ? `${JSON.stringify(result)}\n` : `${summaryLine(result)}\n`);
    if (result.interrupted) process.exitCode = 130;
  } finally {
    process.off('SIGINT', onSigint);
    source.close();
    await stores.close();
  }
}

export function registerBackfill(program: Command): void {
  program
    .command('backfill')
    .description(COMMAND_SUMMARIES.backfill)
    .option('--from <date>', 'first study date, YYYY-MM-DD')
    .option('--to <date>', 'last study date, YYYY-MM-DD (inclusive)')
    .option('--modality <modality>', 'studies that contain this modality (ModalitiesInStudy)', 'CT')
    .option('--body-part <list>', 'only series of these BodyPartExamined values, e.g. CHEST,ABDOMEN')
    .option('--dry-run', 'list and check the studies, queue nothing')
    .option('--json', 'one JSON summary on stdout, no progress bar')
    .option('--window <n>', "most of this run's studies unfinished in the queue at once", '64')
    .option('--max-retrievals <n>', 'PACS: most backfill retrievals at once, across all workers ("none" lifts it)')
    .option('--max-rate <bytes/s>', 'PACS: most bytes per second for backfill retrievals, e.g. 20MB ("none" lifts it)')
    .option('--set-limits', 'only set (or show) the PACS limits, then exit (works while a backfill runs)')
    .action((f: BackfillFlags) => runCommand(f));
}
