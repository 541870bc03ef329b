import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { EMBEDDED_SCHEMA_VERSION, embeddedSchemaVersion, migrateEmbeddedStore, schemaHistory } from '../../src/jobs/sqlite-schema.js';
import { SqliteJobQueue, openSqlite } from '../../src/jobs/sqlite-queue.js';
import { SqliteWatchStore } from '../../src/jobs/watches.js';

/**
 * The embedded store's schema version and migrations on real SQLite files: a file from before versioning
 * (tables as the code created them then, with rows) is adopted and brought to the current version with its
 * rows intact; a current file is left alone; a file from a newer vbmd is refused with a sentence.
 */
const dir = mkdtempSync(join(tmpdir(), 'vbmd-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The tables exactly as the queue and the watch store created them before the schema had a version. */
function legacyFile(path: string): void {
  const db = new Database(path);
  db.exec(`CREATE TABLE jobs (id TEXT NOT NULL, queue TEXT NOT NULL, data TEXT NOT NULL, state TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, run_at INTEGER NOT NULL, lease_until INTEGER,
      lease_owner TEXT, failed_reason TEXT, result TEXT, created_at INTEGER NOT NULL, finished_at INTEGER, PRIMARY KEY (queue, id));
    CREATE INDEX jobs_ready ON jobs (queue, state, run_at);
    ALTER TABLE jobs ADD COLUMN checkpoint TEXT;
    CREATE TABLE study_watches (id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, patient_id TEXT NOT NULL, service_request_id TEXT,
      accession_number TEXT, fhir_server TEXT, hook TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
      status TEXT NOT NULL, study_instance_uid TEXT, last_polled_at TEXT);`);
  db.prepare(`INSERT INTO jobs (id, queue, data, state, attempts, max_attempts, run_at, created_at) VALUES ('study-1.2.3', 'analysis', '{"n":1}', 'waiting', 0, 3, 1, 1)`).run();
  db.prepare(`INSERT INTO study_watches (id, key, patient_id, accession_number, hook, created_at, expires_at, status) VALUES ('w1', 'acc:p1:A1', 'p1', 'A1', 'order-sign', '2026-01-01T00:00:00Z', '2999-01-01T00:00:00Z', 'waiting')`).run();
  db.close();
}

describe('embedded store schema', () => {
  it('adopts a file from before versioning: every migration applied once, rows kept, new columns usable', async () => {
    const path = join(dir, 'legacy.sqlite');
    legacyFile(path);
    const raw = new Database(path);
    expect(embeddedSchemaVersion(raw)).toBe(0);
    expect(migrateEmbeddedStore(raw)).toEqual(schemaHistory().map((m) => m.version));
    expect(embeddedSchemaVersion(raw)).toBe(EMBEDDED_SCHEMA_VERSION);
    expect(migrateEmbeddedStore(raw)).toEqual([]);
    raw.close();

    const db = openSqlite(path);
    const queue = new SqliteJobQueue<{ n: number }>({ db, retry: { retries: 2, baseDelayMs: 10 } });
    expect(await queue.get('study-1.2.3')).toMatchObject({ state: 'waiting', data: { n: 1 } });
    await queue.add({ n: 2 }, { jobId: 'backfill-1', priority: 'backfill' });
    expect((db.prepare("SELECT priority FROM jobs WHERE id = 'backfill-1'").get() as { priority: number }).priority).toBeGreaterThan(0);
    const watches = new SqliteWatchStore(db);
    expect(await watches.get('w1')).toMatchObject({ patientId: 'p1', accessionNumber: 'A1', status: 'waiting' });
    expect((db.prepare("SELECT key FROM ops_settings").all() as unknown[]).length).toBe(0);
    await queue.close();
    db.close();
  });

  it('refuses a file written by a newer vbmd, naming both versions', () => {
    const path = join(dir, 'newer.sqlite');
    const db = new Database(path);
    db.pragma(`user_version = ${EMBEDDED_SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openSqlite(path)).toThrow(new RegExp(`schema version ${EMBEDDED_SCHEMA_VERSION + 1}, newer than this vbmd knows \\(${EMBEDDED_SCHEMA_VERSION}\\)`));
  });
});
