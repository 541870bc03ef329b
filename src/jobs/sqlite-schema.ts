import type { Database } from 'better-sqlite3';
import { VbmdError } from '../util/errors.js';

/**
 * The embedded store's schema (one SQLite file in VBMD_DATA_DIR: jobs, order watches, operator settings,
 * retrieval leases) and its migrations. The version is SQLite's own `PRAGMA user_version`; each migration runs
 * in one transaction with the version bump, so a crash leaves the file at the old or the new version, never
 * between. A file written by a newer vbmd (a higher version than this code knows) is refused with a sentence
 * saying so, rather than read with a schema it does not understand. `vbmd doctor` reports the version.
 *
 * Migration 1 is the schema as it was before versioning, written so that it also adopts such an old file
 * (CREATE IF NOT EXISTS, columns added only when missing). The CDS feedback tables (cds-hooks/feedback-store.ts)
 * still create themselves and are not versioned here.
 */
interface Migration {
  version: number;
  why: string;
  up(db: Database): void;
}

function hasColumn(db: Database, table: string, column: string): boolean {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).some((c) => c.name === column);
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    why: 'jobs and order watches (the schema before versioning)',
    up: (db) => {
      db.exec(`CREATE TABLE IF NOT EXISTS jobs (
        id TEXT NOT NULL, queue TEXT NOT NULL, data TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, run_at INTEGER NOT NULL,
        lease_until INTEGER, lease_owner TEXT, failed_reason TEXT, result TEXT,
        created_at INTEGER NOT NULL, finished_at INTEGER,
        PRIMARY KEY (queue, id)
      );
      CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, state, run_at);
      CREATE TABLE IF NOT EXISTS study_watches (
        id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, patient_id TEXT NOT NULL, service_request_id TEXT,
        accession_number TEXT, fhir_server TEXT, hook TEXT NOT NULL, created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL, status TEXT NOT NULL, study_instance_uid TEXT, last_polled_at TEXT
      );
      CREATE INDEX IF NOT EXISTS study_watches_due ON study_watches (status, last_polled_at);
      CREATE INDEX IF NOT EXISTS study_watches_accession ON study_watches (accession_number);`);
      if (!hasColumn(db, 'jobs', 'checkpoint')) db.exec('ALTER TABLE jobs ADD COLUMN checkpoint TEXT');
      if (!hasColumn(db, 'study_watches', 'accession_system')) db.exec('ALTER TABLE study_watches ADD COLUMN accession_system TEXT');
    },
  },
  {
    version: 2,
    why: 'job priorities: order-driven studies are taken before archive backfill studies',
    up: (db) => {
      db.exec(`ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
      DROP INDEX IF EXISTS jobs_ready;
      CREATE INDEX jobs_ready ON jobs (queue, state, priority, run_at);`);
    },
  },
  {
    version: 3,
    why: "a watch carries the correlation id of the hook call that made it, so one study's log lines can be followed",
    up: (db) => db.exec('ALTER TABLE study_watches ADD COLUMN correlation_id TEXT'),
  },
  {
    version: 4,
    why: 'operator settings and progress shared between processes (backfill limits and progress)',
    up: (db) => db.exec('CREATE TABLE ops_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL)'),
  },
  {
    version: 5,
    why: 'leases on PACS retrievals, so a cap on concurrent retrievals holds across worker processes',
    up: (db) => db.exec('CREATE TABLE retrieval_leases (holder TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)'),
  },
];

export const EMBEDDED_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function embeddedSchemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Brings the file to EMBEDDED_SCHEMA_VERSION; returns the versions applied (none when already current). */
export function migrateEmbeddedStore(db: Database, file = 'the embedded store'): number[] {
  const current = embeddedSchemaVersion(db);
  if (current === EMBEDDED_SCHEMA_VERSION) return [];
  if (current > EMBEDDED_SCHEMA_VERSION) {
    throw new VbmdError(
      'config',
      `${file} has schema version ${current}, newer than this vbmd knows (${EMBEDDED_SCHEMA_VERSION}): it was written by a newer vbmd; run that version, or restore a backup made before the upgrade.`,
    );
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    const step = db.transaction(() => {
      if (embeddedSchemaVersion(db) >= m.version) return false;
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
      return true;
    });
    if (step.immediate()) applied.push(m.version);
  }
  return applied;
}

/** What each version added, for `vbmd doctor` and the README. */
export function schemaHistory(): { version: number; why: string }[] {
  return MIGRATIONS.map((m) => ({ version: m.version, why: m.why }));
}
