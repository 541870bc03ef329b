import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { VbmdError } from '../util/errors.js';
import { currentCorrelationId } from '../util/log-context.js';
import { migrateEmbeddedStore } from './sqlite-schema.js';

/**
 * A watch is the promise an order-sign hook made: "vBMD will be measured from this scan". It links the
 * patient and ServiceRequest (known only from the EHR's hook) to the accession number the study will carry
 * in the PACS, until the study arrives or the watch expires. Persisted like the queue: SQLite embedded,
 * Redis when the service runs on Redis, so a restart loses none.
 */
/** waiting: polled for; queued: its study was found and queued; found: the result was written. */
export type WatchStatus = 'waiting' | 'queued' | 'found' | 'expired';

export interface StudyWatch {
  id: string;
  patientId: string;
  serviceRequestId?: string;
  accessionNumber?: string;
  /** The accession's issuer as the order gave it (ServiceRequest.identifier.system). */
  accessionSystem?: string;
  fhirServer?: string;
  hook: string;
  createdAt: string;
  expiresAt: string;
  status: WatchStatus;
  studyInstanceUid?: string;
  lastPolledAt?: string;
  /** The hook call's correlation id (src/util/log-context.ts): the poll, the job and the write log it too. */
  correlationId?: string;
}

export const newWatchSchema = z.object({
  patientId: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/),
  serviceRequestId: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/).optional(),
  accessionNumber: z.string().min(1).max(64).optional(),
  accessionSystem: z.string().max(1024).optional(),
  fhirServer: z.string().max(2048).optional(),
  hook: z.string().max(64),
  ttlMs: z.number().positive(),
});
export type NewWatch = z.infer<typeof newWatchSchema>;

/** Stored fields are bounded here too, whoever calls (the hook validates first; this is the backstop). */
function checkNewWatch(w: NewWatch): NewWatch {
  const r = newWatchSchema.safeParse(w);
  if (!r.success) throw new VbmdError('bad-input', `Not a storable watch: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`);
  return r.data;
}

export interface WatchStore {
  /** One watch per ServiceRequest (else per patient + accession): a re-signed order refreshes it. */
  upsert(w: NewWatch): Promise<StudyWatch>;
  get(id: string): Promise<StudyWatch | undefined>;
  /** Waiting, unexpired watches with an accession number, least recently polled first. */
  due(now: Date, limit: number): Promise<StudyWatch[]>;
  /** The waiting (or found) watch for an accession, to link a study that arrived another way to its order. */
  findByAccession(accessionNumber: string): Promise<StudyWatch | undefined>;
  /** Every unexpired watch naming this accession: more than one means two orders claim one study. */
  listByAccession(accessionNumber: string): Promise<StudyWatch[]>;
  markPolled(id: string, at: Date): Promise<void>;
  /** Its study was found and queued: no more polling; not yet `found` (that is when the result is written). */
  markQueued(id: string, studyInstanceUid: string): Promise<void>;
  markFound(id: string, studyInstanceUid: string): Promise<void>;
  /** Waiting watches past their expiry become `expired`; returns how many. */
  expire(now: Date): Promise<number>;
  close?(): Promise<void>;
}

function watchKey(w: Pick<NewWatch, 'patientId' | 'serviceRequestId' | 'accessionNumber'>): string {
  if (w.serviceRequestId) return `sr:${w.serviceRequestId}`;
  if (w.accessionNumber) return `acc:${w.patientId}:${w.accessionNumber}`;
  return `patient:${w.patientId}:${randomUUID()}`;
}

interface WatchRow {
  id: string;
  key: string;
  patient_id: string;
  service_request_id: string | null;
  accession_number: string | null;
  accession_system: string | null;
  fhir_server: string | null;
  hook: string;
  created_at: string;
  expires_at: string;
  status: WatchStatus;
  study_instance_uid: string | null;
  last_polled_at: string | null;
  correlation_id: string | null;
}

function fromRow(r: WatchRow): StudyWatch {
  return {
    id: r.id,
    patientId: r.patient_id,
    ...(r.service_request_id ? { serviceRequestId: r.service_request_id } : {}),
    ...(r.accession_number ? { accessionNumber: r.accession_number } : {}),
    ...(r.accession_system ? { accessionSystem: r.accession_system } : {}),
    ...(r.fhir_server ? { fhirServer: r.fhir_server } : {}),
    hook: r.hook,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    status: r.status,
    ...(r.study_instance_uid ? { studyInstanceUid: r.study_instance_uid } : {}),
    ...(r.last_polled_at ? { lastPolledAt: r.last_polled_at } : {}),
    ...(r.correlation_id ? { correlationId: r.correlation_id } : {}),
  };
}

export class SqliteWatchStore implements WatchStore {
  constructor(private readonly db: Database) {
    // The table (and its later columns) come from the embedded store's migrations.
    migrateEmbeddedStore(db);
  }

  async upsert(input: NewWatch): Promise<StudyWatch> {
    const w = checkNewWatch(input);
    const now = new Date();
    const key = watchKey(w);
    const row = this.db
      .prepare(
        `INSERT INTO study_watches (id, key, patient_id, service_request_id, accession_number, accession_system, fhir_server, hook, created_at, expires_at, status, correlation_id)
         VALUES (@id, @key, @patient_id, @service_request_id, @accession_number, @accession_system, @fhir_server, @hook, @created_at, @expires_at, 'waiting', @correlation_id)
         ON CONFLICT(key) DO UPDATE SET
           accession_number = COALESCE(excluded.accession_number, study_watches.accession_number),
           accession_system = COALESCE(excluded.accession_system, study_watches.accession_system),
           fhir_server = COALESCE(excluded.fhir_server, study_watches.fhir_server),
           hook = excluded.hook,
           expires_at = MAX(excluded.expires_at, study_watches.expires_at),
           status = CASE WHEN study_watches.status IN ('found', 'queued') THEN study_watches.status ELSE 'waiting' END
         RETURNING *`,
      )
      .get({
        id: randomUUID(),
        key,
        patient_id: w.patientId,
        service_request_id: w.serviceRequestId ?? null,
        accession_number: w.accessionNumber ?? null,
        accession_system: w.accessionSystem ?? null,
        fhir_server: w.fhirServer ?? null,
        hook: w.hook,
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + w.ttlMs).toISOString(),
        correlation_id: currentCorrelationId() ?? null,
      }) as WatchRow;
    return fromRow(row);
  }

  async get(id: string): Promise<StudyWatch | undefined> {
    const r = this.db.prepare('SELECT * FROM study_watches WHERE id = ?').get(id) as WatchRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  async due(now: Date, limit: number): Promise<StudyWatch[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM study_watches WHERE status = 'waiting' AND accession_number IS NOT NULL AND expires_at > ?
         ORDER BY COALESCE(last_polled_at, '') ASC LIMIT ?`,
      )
      .all(now.toISOString(), limit) as WatchRow[];
    return rows.map(fromRow);
  }

  async findByAccession(accessionNumber: string): Promise<StudyWatch | undefined> {
    const r = this.db
      .prepare(`SELECT * FROM study_watches WHERE accession_number = ? ORDER BY CASE status WHEN 'waiting' THEN 0 WHEN 'queued' THEN 1 WHEN 'found' THEN 2 ELSE 3 END, created_at DESC LIMIT 1`)
      .get(accessionNumber) as WatchRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  async listByAccession(accessionNumber: string): Promise<StudyWatch[]> {
    const rows = this.db.prepare(`SELECT * FROM study_watches WHERE accession_number = ? AND status != 'expired' ORDER BY created_at`).all(accessionNumber) as WatchRow[];
    return rows.map(fromRow);
  }

  async markPolled(id: string, at: Date): Promise<void> {
    this.db.prepare('UPDATE study_watches SET last_polled_at = ? WHERE id = ?').run(at.toISOString(), id);
  }

  async markQueued(id: string, studyInstanceUid: string): Promise<void> {
    this.db.prepare(`UPDATE study_watches SET status = 'queued', study_instance_uid = ? WHERE id = ? AND status = 'waiting'`).run(studyInstanceUid, id);
  }

  async markFound(id: string, studyInstanceUid: string): Promise<void> {
    this.db.prepare(`UPDATE study_watches SET status = 'found', study_instance_uid = ? WHERE id = ?`).run(studyInstanceUid, id);
  }

  async expire(now: Date): Promise<number> {
    return this.db.prepare(`UPDATE study_watches SET status = 'expired' WHERE status = 'waiting' AND expires_at <= ?`).run(now.toISOString()).changes;
  }
}

/**
 * Redis layout: hash `${p}:w:{id}` per watch, `${p}:key:{key}` -> id, set `${p}:accs:{accession}` of the ids
 * naming an accession (older versions kept one id in `${p}:acc:{accession}`, still read), and a sorted set
 * `${p}:waiting` of waiting ids scored by last poll time (ms).
 */
export class RedisWatchStore implements WatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly p = 'vbmd:watch',
  ) {}

  private async read(id: string): Promise<StudyWatch | undefined> {
    const h = await this.redis.hgetall(`${this.p}:w:${id}`);
    if (!h.id) return undefined;
    return JSON.parse(h.json!) as StudyWatch;
  }

  private async write(w: StudyWatch): Promise<void> {
    await this.redis.hset(`${this.p}:w:${w.id}`, { id: w.id, json: JSON.stringify(w) });
  }

  async upsert(input: NewWatch): Promise<StudyWatch> {
    const nw = checkNewWatch(input);
    const key = watchKey(nw);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + nw.ttlMs).toISOString();
    const newId = randomUUID();
    // SET NX decides atomically which instance creates the watch for this order.
    const created = (await this.redis.set(`${this.p}:key:${key}`, newId, 'NX')) === 'OK';
    const id = created ? newId : ((await this.redis.get(`${this.p}:key:${key}`)) ?? newId);
    const prev = created ? undefined : await this.read(id);
    const w: StudyWatch = prev
      ? {
          ...prev,
          ...(nw.accessionNumber ? { accessionNumber: nw.accessionNumber } : {}),
          ...(nw.accessionSystem ? { accessionSystem: nw.accessionSystem } : {}),
          ...(nw.fhirServer ? { fhirServer: nw.fhirServer } : {}),
          hook: nw.hook,
          expiresAt: expiresAt > prev.expiresAt ? expiresAt : prev.expiresAt,
          status: prev.status === 'found' || prev.status === 'queued' ? prev.status : 'waiting',
        }
      : {
          id,
          patientId: nw.patientId,
          ...(nw.serviceRequestId ? { serviceRequestId: nw.serviceRequestId } : {}),
          ...(nw.accessionNumber ? { accessionNumber: nw.accessionNumber } : {}),
          ...(nw.accessionSystem ? { accessionSystem: nw.accessionSystem } : {}),
          ...(nw.fhirServer ? { fhirServer: nw.fhirServer } : {}),
          hook: nw.hook,
          createdAt: now.toISOString(),
          expiresAt,
          status: 'waiting',
          ...(currentCorrelationId() ? { correlationId: currentCorrelationId()! } : {}),
        };
    await this.write(w);
    if (w.accessionNumber) await this.redis.sadd(`${this.p}:accs:${w.accessionNumber}`, w.id);
    if (w.status === 'waiting') await this.redis.zadd(`${this.p}:waiting`, 'NX', '0', w.id);
    return w;
  }

  get(id: string): Promise<StudyWatch | undefined> {
    return this.read(id);
  }

  async due(now: Date, limit: number): Promise<StudyWatch[]> {
    const ids = await this.redis.zrange(`${this.p}:waiting`, '0', String(Math.max(0, limit * 4 - 1)));
    const out: StudyWatch[] = [];
    for (const id of ids) {
      const w = await this.read(id);
      if (w && w.status === 'waiting' && w.accessionNumber && w.expiresAt > now.toISOString()) out.push(w);
      if (out.length >= limit) break;
    }
    return out;
  }

  async findByAccession(accessionNumber: string): Promise<StudyWatch | undefined> {
    const all = await this.listByAccession(accessionNumber);
    const rank = (w: StudyWatch): number => (w.status === 'waiting' ? 0 : w.status === 'queued' ? 1 : 2);
    return all.sort((a, b) => rank(a) - rank(b) || b.createdAt.localeCompare(a.createdAt))[0];
  }

  async listByAccession(accessionNumber: string): Promise<StudyWatch[]> {
    const ids = new Set(await this.redis.smembers(`${this.p}:accs:${accessionNumber}`));
    const legacy = await this.redis.get(`${this.p}:acc:${accessionNumber}`);
    if (legacy) ids.add(legacy);
    const out: StudyWatch[] = [];
    for (const id of ids) {
      const w = await this.read(id);
      if (w && w.status !== 'expired' && w.accessionNumber === accessionNumber) out.push(w);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async markQueued(id: string, studyInstanceUid: string): Promise<void> {
    const w = await this.read(id);
    if (!w || w.status !== 'waiting') return;
    await this.write({ ...w, status: 'queued', studyInstanceUid });
    await this.redis.zrem(`${this.p}:waiting`, id);
  }

  async markPolled(id: string, at: Date): Promise<void> {
    const w = await this.read(id);
    if (!w) return;
    await this.write({ ...w, lastPolledAt: at.toISOString() });
    if (w.status === 'waiting') await this.redis.zadd(`${this.p}:waiting`, String(at.getTime()), id);
  }

  async markFound(id: string, studyInstanceUid: string): Promise<void> {
    const w = await this.read(id);
    if (!w) return;
    await this.write({ ...w, status: 'found', studyInstanceUid });
    await this.redis.zrem(`${this.p}:waiting`, id);
  }

  async expire(now: Date): Promise<number> {
    const ids = await this.redis.zrange(`${this.p}:waiting`, '0', '-1');
    let n = 0;
    for (const id of ids) {
      const w = await this.read(id);
      if (!w) {
        await this.redis.zrem(`${this.p}:waiting`, id);
        continue;
      }
      if (w.status === 'waiting' && w.expiresAt <= now.toISOString()) {
        await this.write({ ...w, status: 'expired' });
        await this.redis.zrem(`${this.p}:waiting`, id);
        n++;
      }
    }
    return n;
  }
}
