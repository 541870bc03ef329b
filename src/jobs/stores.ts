import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { BullMqJobQueue, boundedRedisConnection, redisConnection, redisReady, throttledRedisWarning } from './bullmq-queue.js';
import { RedisDataGuard } from './redis-persistence.js';
import { SqliteJobQueue, openSqlite } from './sqlite-queue.js';
import type { AnalysisJobData } from './analysis-job.js';
import type { JobQueue } from './queue.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import { RedisLeaseStore, RedisOpsSettings, SqliteLeaseStore, SqliteOpsSettings } from './ops-settings.js';
import type { LeaseStore, OpsSettings } from './ops-settings.js';
import { RedisWatchStore, SqliteWatchStore } from './watches.js';
import type { WatchStore } from './watches.js';

/**
 * Where the service keeps its state: embedded (one SQLite file in the data dir: jobs, watches, and the
 * CDS feedback table) or Redis (BullMQ jobs, watches, feedback, the jti replay set) when REDIS_URL is set.
 * The caller gets the raw handle too (`sqlite` or `redis`) to put its own tables/keys next to these.
 */
export interface ServiceStores {
  kind: 'embedded' | 'redis';
  queue: JobQueue<AnalysisJobData>;
  watches: WatchStore;
  /** Operator settings and progress shared by processes (backfill limits and progress). */
  settings: OpsSettings;
  /** Leases bounding concurrent PACS retrievals across processes (backfill retrieval cap). */
  leases: LeaseStore;
  sqlite?: Database;
  redis?: Redis;
  /** Before taking work: waits for Redis and checks that it persists (see redis-persistence.ts). */
  start(): Promise<void>;
  /** Readiness of the store (the queue answers; Redis persists and still holds our data). */
  check(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface OpenStoresOptions {
  dataDir: string;
  redisUrl?: string;
  retry: RetryPolicy;
  /** Embedded lease / BullMQ lock: how soon a dead worker's job is taken again (default 30 s). */
  leaseMs?: number;
  /** Key prefix / queue name suffix (tests). */
  prefix?: string;
  /** Refuse a Redis that neither appends nor snapshots (REDIS_REQUIRE_PERSISTENCE, default true). */
  requireRedisPersistence?: boolean;
  /** Fail Redis commands fast (default true; false for a worker-only process, see BullMqQueueOptions). */
  boundedRedisWaits?: boolean;
}

export function openStores(o: OpenStoresOptions): ServiceStores {
  if (o.redisUrl) {
    // Request-time state (watches, jti replay set, feedback): bounded waits, so a hook answers while Redis is away.
    const bounded = o.boundedRedisWaits !== false;
    const redis = bounded ? boundedRedisConnection(o.redisUrl) : redisConnection(o.redisUrl);
    redis.on('error', throttledRedisWarning('stores connection'));
    const guard = new RedisDataGuard(redis, { prefix: o.prefix ?? 'vbmd', requirePersistence: o.requireRedisPersistence ?? true });
    const queue = new BullMqJobQueue<AnalysisJobData>({
      redisUrl: o.redisUrl,
      retry: o.retry,
      boundedWaits: bounded,
      ...(o.leaseMs ? { lockDurationMs: o.leaseMs } : {}),
      ...(o.prefix ? { prefix: o.prefix } : {}),
    });
    return {
      kind: 'redis',
      queue,
      watches: new RedisWatchStore(redis, `${o.prefix ?? 'vbmd'}:watch`),
      settings: new RedisOpsSettings(redis, `${o.prefix ?? 'vbmd'}:ops`),
      leases: new RedisLeaseStore(redis, `${o.prefix ?? 'vbmd'}:retrieval-leases`),
      redis,
      start: async () => {
        await Promise.all([redisReady(redis, 'stores'), queue.ready()]);
        await guard.start();
      },
      check: async () => {
        // The data guard first: after Redis came back empty, that is what an operator must read, even while
        // the queue's own connection is still reconnecting.
        const warning = await guard.check();
        await queue.ping();
        return warning;
      },
      close: async () => {
        await queue.close();
        await redis.quit().catch(() => undefined);
      },
    };
  }
  mkdirSync(o.dataDir, { recursive: true });
  const db = openSqlite(join(o.dataDir, 'vbmd.sqlite'));
  const queue = new SqliteJobQueue<AnalysisJobData>({ db, retry: o.retry, ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}) });
  return {
    kind: 'embedded',
    queue,
    watches: new SqliteWatchStore(db),
    settings: new SqliteOpsSettings(db),
    leases: new SqliteLeaseStore(db),
    sqlite: db,
    start: async () => undefined,
    check: async () => void (await queue.ping()),
    close: async () => {
      await queue.close();
      db.close();
    },
  };
}
