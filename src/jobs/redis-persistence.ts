import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { VbmdError } from '../util/errors.js';
import { log } from '../util/log.js';

/**
 * Jobs and order watches live in Redis when REDIS_URL is set; a Redis that neither appends (AOF) nor
 * snapshots (RDB `save`) loses them on restart, silently: measured, a restart with AOF off dropped 10 of
 * 30 queued jobs and every watch. So: at start the service asks Redis how it persists and refuses to run
 * without persistence (unless REDIS_REQUIRE_PERSISTENCE=false, which logs an error-level warning instead);
 * readiness asks again; and a marker key written at start lets it notice that Redis came back empty
 * (restarted without persistence, or flushed), which is logged at error level and shown in readiness.
 */
export interface RedisPersistence {
  aof: boolean;
  /** RDB snapshots configured (a non-empty `save` schedule). */
  rdb: boolean;
  /** False when Redis would not say (CONFIG disabled, as on some managed services): neither is then known. */
  known: boolean;
}

function configValue(reply: unknown): string | undefined {
  // CONFIG GET answers [name, value] (RESP2).
  return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
}

export async function readPersistence(redis: Redis): Promise<RedisPersistence> {
  try {
    const aof = configValue(await redis.config('GET', 'appendonly'));
    const save = configValue(await redis.config('GET', 'save'));
    if (aof !== undefined && save !== undefined) return { aof: aof === 'yes', rdb: save.trim() !== '', known: true };
  } catch {
    // CONFIG renamed or forbidden: INFO still says whether AOF is on.
  }
  const info = await redis.info('persistence');
  if (/^aof_enabled:1\s*$/m.test(info)) return { aof: true, rdb: false, known: true };
  return { aof: false, rdb: false, known: false };
}

export function describePersistence(p: RedisPersistence): string {
  if (!p.known) return 'Redis does not say whether it persists (CONFIG is not available)';
  if (p.aof && p.rdb) return 'Redis persists with AOF and RDB snapshots';
  if (p.aof) return 'Redis persists with AOF';
  if (p.rdb) return 'Redis persists with RDB snapshots (work since the last snapshot is lost on a crash)';
  return 'Redis does not persist (appendonly no, no save schedule): a Redis restart loses queued jobs and order watches';
}

export interface RedisDataGuardOptions {
  /** Refuse to start, and fail readiness, when Redis does not persist (default true). */
  requirePersistence: boolean;
  /** Key prefix of this service's data. */
  prefix: string;
}

export class RedisDataGuard {
  private readonly markerKey: string;
  private marker: string | undefined;
  private lostAt: string | undefined;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly o: RedisDataGuardOptions,
  ) {
    this.markerKey = `${o.prefix}:data-marker`;
    // After every reconnect: did Redis come back with our data?
    redis.on('ready', () => {
      if (this.marker) void this.checkMarker().catch(() => undefined);
    });
  }

  /** At start: refuse (or warn loudly about) a Redis without persistence, and write the data marker. */
  async start(): Promise<void> {
    const p = await readPersistence(this.redis);
    if (!p.aof && !p.rdb) {
      if (this.o.requirePersistence && p.known) {
        throw new VbmdError(
          'config',
          `${describePersistence(p)}. Turn on appendonly (or a save schedule) in redis.conf, or set REDIS_REQUIRE_PERSISTENCE=false to run anyway.`,
        );
      }
      log.error({ persistence: p }, `${describePersistence(p)}; running anyway (REDIS_REQUIRE_PERSISTENCE=false or unknown)`);
    }
    // SET NX: every instance of the service shares one marker; an existing one is adopted.
    await this.redis.set(this.markerKey, randomUUID(), 'NX');
    this.marker = (await this.redis.get(this.markerKey)) ?? undefined;
  }

  /**
   * Readiness: throws while Redis does not persist (when required); returns a warning (shown by /readyz to
   * operators, the service stays in rotation) once Redis came back without our data.
   */
  async check(): Promise<string | undefined> {
    await this.checkMarker();
    if (this.o.requirePersistence) {
      const p = await readPersistence(this.redis);
      if (p.known && !p.aof && !p.rdb) throw new VbmdError('config', `${describePersistence(p)}${this.lostAt ? `; it came back without this service's data at ${this.lostAt}` : ''}.`);
    }
    return this.lostAt
      ? `Redis came back without this service's data at ${this.lostAt} (restarted without persistence, or flushed): jobs and order watches queued before then are lost.`
      : undefined;
  }

  /** When the loss was seen (ISO time), if it was. */
  get dataLostAt(): string | undefined {
    return this.lostAt;
  }

  private checkMarker(): Promise<void> {
    this.checking ??= (async () => {
      try {
        if (!this.marker) return;
        const now = await this.redis.get(this.markerKey);
        if (now === this.marker) return;
        this.lostAt = new Date().toISOString();
        log.error(
          { lostAt: this.lostAt, markerFound: now !== null },
          'Redis came back without this service\'s data (restarted without persistence, or flushed): queued jobs and order watches from before are lost; re-send the studies (POST /api/studies/{uid}/analyze) and check REDIS persistence',
        );
        // A new marker, so a second loss is noticed too.
        await this.redis.set(this.markerKey, randomUUID(), 'NX');
        this.marker = (await this.redis.get(this.markerKey)) ?? undefined;
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }
}
