import type { Database } from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { migrateEmbeddedStore } from './sqlite-schema.js';

/**
 * Small JSON values that several processes share through the service's store (the embedded SQLite file or
 * Redis): the archive backfill's retrieval limits, which an operator changes while it runs and every worker
 * reads, and its progress, which the backfill command writes and /metrics reads. Not for anything large or
 * hot: one row / one hash field per key.
 */
export interface OpsSettings {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

export class SqliteOpsSettings implements OpsSettings {
  constructor(private readonly db: Database) {
    migrateEmbeddedStore(db);
  }

  async get(key: string): Promise<unknown> {
    const r = this.db.prepare('SELECT value FROM ops_settings WHERE key = ?').get(key) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as unknown) : undefined;
  }

  async set(key: string, value: unknown): Promise<void> {
    this.db
      .prepare('INSERT INTO ops_settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
      .run(key, JSON.stringify(value), Date.now());
  }
}

export class RedisOpsSettings implements OpsSettings {
  constructor(
    private readonly redis: Redis,
    private readonly hash = 'vbmd:ops',
  ) {}

  async get(key: string): Promise<unknown> {
    const v = await this.redis.hget(this.hash, key);
    return v === null ? undefined : (JSON.parse(v) as unknown);
  }

  async set(key: string, value: unknown): Promise<void> {
    await this.redis.hset(this.hash, key, JSON.stringify(value));
  }
}

/**
 * Leases that bound how many things run at once across processes (PACS retrievals): a holder takes one if
 * fewer than `limit` unexpired leases exist, atomically; an expired lease (its process died) stops counting.
 */
export interface LeaseStore {
  tryAcquire(holder: string, limit: number, ttlMs: number): Promise<boolean>;
  renew(holder: string, ttlMs: number): Promise<void>;
  release(holder: string): Promise<void>;
  /** Unexpired leases now. */
  count(): Promise<number>;
}

export class SqliteLeaseStore implements LeaseStore {
  constructor(private readonly db: Database) {
    migrateEmbeddedStore(db);
  }

  async tryAcquire(holder: string, limit: number, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const tx = this.db.transaction((): boolean => {
      this.db.prepare('DELETE FROM retrieval_leases WHERE expires_at < ?').run(now);
      const n = (this.db.prepare('SELECT COUNT(*) AS n FROM retrieval_leases').get() as { n: number }).n;
      if (n >= limit) return false;
      this.db.prepare('INSERT OR REPLACE INTO retrieval_leases (holder, expires_at) VALUES (?, ?)').run(holder, now + ttlMs);
      return true;
    });
    return tx.immediate();
  }

  async renew(holder: string, ttlMs: number): Promise<void> {
    this.db.prepare('UPDATE retrieval_leases SET expires_at = ? WHERE holder = ?').run(Date.now() + ttlMs, holder);
  }

  async release(holder: string): Promise<void> {
    this.db.prepare('DELETE FROM retrieval_leases WHERE holder = ?').run(holder);
  }

  async count(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM retrieval_leases WHERE expires_at >= ?').get(Date.now()) as { n: number }).n;
  }
}

/** Sorted set of holders scored by expiry; the take is one Lua script, so two workers never both get the last slot. */
const ACQUIRE_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
return 1`;

export class RedisLeaseStore implements LeaseStore {
  constructor(
    private readonly redis: Redis,
    private readonly key = 'vbmd:retrieval-leases',
  ) {}

  async tryAcquire(holder: string, limit: number, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const r = await this.redis.eval(ACQUIRE_LUA, 1, this.key, String(now), String(limit), String(now + ttlMs), holder);
    return r === 1;
  }

  async renew(holder: string, ttlMs: number): Promise<void> {
    await this.redis.zadd(this.key, 'XX', String(Date.now() + ttlMs), holder);
  }

  async release(holder: string): Promise<void> {
    await this.redis.zrem(this.key, holder);
  }

  async count(): Promise<number> {
    return this.redis.zcount(this.key, String(Date.now()), '+inf');
  }
}
