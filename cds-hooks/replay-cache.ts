import type { Redis } from 'ioredis';

/**
 * Seen `jti` values of client JWTs (CDS Hooks best practice: keep them at least the maximum JWT lifetime).
 * `remember` answers true the first time a key is seen within its TTL and false on a replay. The memory
 * adapter serves one process; with several service instances behind a load balancer the Redis adapter makes
 * the check shared (SET NX EX is atomic), so a token replayed to another instance is refused too.
 */
export interface ReplayCache {
  remember(key: string, ttlS: number): Promise<boolean>;
  close?(): Promise<void>;
}

export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();
  private lastSweepMs = 0;

  constructor(private readonly maxEntries = 1_000_000) {}

  async remember(key: string, ttlS: number): Promise<boolean> {
    const now = Date.now();
    this.sweep(now);
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return false;
    if (this.seen.size >= this.maxEntries) {
      // Refuse rather than forget: dropping live entries would reopen a replay window.
      return false;
    }
    this.seen.set(key, now + Math.max(1, ttlS) * 1000);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweepMs < 10_000) return;
    this.lastSweepMs = now;
    for (const [k, until] of this.seen) if (until <= now) this.seen.delete(k);
  }
}

export class RedisReplayCache implements ReplayCache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'vbmd:cds:jti:',
  ) {}

  async remember(key: string, ttlS: number): Promise<boolean> {
    const r = await this.redis.set(`${this.prefix}${key}`, '1', 'EX', Math.max(1, Math.ceil(ttlS)), 'NX');
    return r === 'OK';
  }
}
