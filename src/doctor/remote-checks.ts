import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { EnvConfig } from '../config.js';
import { dicomWebSourceFromConfig } from '../dicom/dicomweb/from-config.js';
import { fhirClientFromConfig } from '../fhir/client-config.js';
import { boundedRedisConnection, redisReady } from '../jobs/bullmq-queue.js';
import { describePersistence, readPersistence } from '../jobs/redis-persistence.js';
import { EMBEDDED_SCHEMA_VERSION, embeddedSchemaVersion } from '../jobs/sqlite-schema.js';
import { DEFAULT_MODEL_FILE, verifyModelFile } from '../model/model-file.js';
import { userMessage } from '../util/errors.js';
import { skewResult } from './checks.js';
import type { CheckResult, CheckStatus } from './checks.js';

/** The checks that talk to servers and files (see checks.ts for what and why). */
async function fhirCheck(cfg: EnvConfig): Promise<CheckResult[]> {
  if (!cfg.FHIR_BASE_URL) return [{ check: 'FHIR server', status: 'skip', message: 'No FHIR_BASE_URL: the sandbox serves its own FHIR server.' }];
  const t0 = Date.now();
  try {
    const res = await fhirClientFromConfig(cfg).request<{ fhirVersion?: string }>('GET', 'metadata', { signal: AbortSignal.timeout(10_000) });
    const ms = Date.now() - t0;
    const out: CheckResult[] = [{ check: 'FHIR server', status: 'ok', message: `FHIR server ${cfg.FHIR_BASE_URL} answered its CapabilityStatement (FHIR ${res.body.fhirVersion ?? '?'}) in ${ms} ms.` }];
    const date = Date.parse(res.headers.get('date') ?? '');
    if (Number.isFinite(date)) out.push(skewResult('the FHIR server', (t0 + ms / 2 - date) / 1000));
    return out;
  } catch (e) {
    return [{ check: 'FHIR server', status: 'fail', message: userMessage(e) }];
  }
}

async function pacsCheck(cfg: EnvConfig): Promise<CheckResult> {
  if (!cfg.DICOMWEB_URL) return { check: 'PACS', status: 'skip', message: cfg.DICOM_FOLDER ? `No DICOMWEB_URL: studies come from the folder ${cfg.DICOM_FOLDER}.` : 'No DICOMWEB_URL: the sandbox reads its demo folder.' };
  const source = dicomWebSourceFromConfig(cfg, { retry: { retries: 0 } })!;
  try {
    await source.ping({ timeoutMs: 10_000 });
    return { check: 'PACS', status: 'ok', message: `DICOMweb server ${cfg.DICOMWEB_URL} answered a QIDO-RS search with the configured credentials.` };
  } catch (e) {
    return { check: 'PACS', status: 'fail', message: userMessage(e) };
  } finally {
    source.close();
  }
}

async function redisCheck(cfg: EnvConfig): Promise<CheckResult[]> {
  if (!cfg.REDIS_URL) return [{ check: 'Redis', status: 'skip', message: 'No REDIS_URL: jobs and watches are kept in the embedded SQLite store.' }];
  const redis = boundedRedisConnection(cfg.REDIS_URL);
  redis.on('error', () => undefined);
  try {
    await redisReady(redis, 'doctor', 5000);
    const t0 = Date.now();
    const [s, us] = await redis.time();
    const p = await readPersistence(redis);
    const persists = !p.known || p.aof || p.rdb;
    const where = new URL(cfg.REDIS_URL).host;
    return [
      { check: 'Redis', status: 'ok', message: `Redis at ${where} answered.` },
      {
        check: 'Redis persistence',
        status: persists ? 'ok' : cfg.REDIS_REQUIRE_PERSISTENCE ? 'fail' : 'warn',
        message: persists ? `Redis at ${where} persists its data (${p.aof ? 'AOF' : 'RDB snapshots'}).` : `${describePersistence(p)}; turn on appendonly.`,
      },
      skewResult('Redis', (t0 - (Number(s) * 1000 + Number(us) / 1000)) / 1000),
    ];
  } catch (e) {
    return [{ check: 'Redis', status: 'fail', message: `Redis at ${cfg.REDIS_URL.replace(/\/\/[^@]*@/, '//')} did not answer: ${userMessage(e)}` }];
  } finally {
    redis.disconnect();
  }
}

async function modelCheck(cfg: EnvConfig): Promise<CheckResult> {
  if (!cfg.VBMD_MODEL) return { check: 'model', status: 'warn', message: 'VBMD_MODEL is false: results come from the geometric ROI only and carry no model.' };
  try {
    const m = await verifyModelFile(cfg.VBMD_MODEL_FILE ?? DEFAULT_MODEL_FILE);
    return { check: 'model', status: 'ok', message: `Model ${m.name} ${m.version} at ${m.path} matches its SHA-256 (${m.sha256.slice(0, 12)}...).` };
  } catch (e) {
    return { check: 'model', status: 'fail', message: userMessage(e) };
  }
}

function writable(what: string, dir: string): CheckResult {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return { check: what, status: 'ok', message: `${dir} is writable.` };
  } catch (e) {
    return { check: what, status: 'fail', message: `${dir} cannot be written (${(e as NodeJS.ErrnoException).code ?? userMessage(e)}): fix its permissions or choose another folder.` };
  }
}

function storeCheck(cfg: EnvConfig): CheckResult {
  if (cfg.REDIS_URL) return { check: 'embedded store', status: 'skip', message: 'Redis holds the state (REDIS_URL).' };
  const file = join(resolve(cfg.VBMD_DATA_DIR), 'vbmd.sqlite');
  if (!existsSync(file)) return { check: 'embedded store', status: 'ok', message: `${file} does not exist yet; the first start creates it (schema version ${EMBEDDED_SCHEMA_VERSION}).` };
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    const v = embeddedSchemaVersion(db);
    db.close();
    if (v > EMBEDDED_SCHEMA_VERSION) return { check: 'embedded store', status: 'fail', message: `${file} has schema version ${v}, newer than this vbmd (${EMBEDDED_SCHEMA_VERSION}): it was written by a newer vbmd.` };
    if (v < EMBEDDED_SCHEMA_VERSION) return { check: 'embedded store', status: 'warn', message: `${file} has schema version ${v}; the next start migrates it to ${EMBEDDED_SCHEMA_VERSION} (back it up first).` };
    return { check: 'embedded store', status: 'ok', message: `${file} is at schema version ${v}, this vbmd's.` };
  } catch (e) {
    return { check: 'embedded store', status: 'fail', message: `${file} cannot be read as SQLite: ${userMessage(e)}` };
  }
}


export async function remoteChecks(cfg: EnvConfig, auditFile: string): Promise<CheckResult[]> {
  const remote = await Promise.all([fhirCheck(cfg), pacsCheck(cfg), redisCheck(cfg), modelCheck(cfg)]);
  return [...remote.flat(), storeCheck(cfg), writable('data folder', resolve(cfg.VBMD_DATA_DIR)), writable('audit log folder', dirname(auditFile))];
}
