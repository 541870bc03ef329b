import type { Database } from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type { FeedbackItem } from './hook-request.js';

/**
 * CDS feedback (POST /cds-services/{id}/feedback): every item is kept (which card, accepted or overridden,
 * which suggestion, which override reason, the clinician's comment) and counted per service, outcome and
 * reason, so a site can see whether the alert is acted on or overridden and why.
 */
export interface FeedbackCounts {
  total: number;
  byKey: { serviceId: string; outcome: string; reason: string | null; count: number }[];
}

export interface FeedbackStore {
  record(serviceId: string, clientIss: string, items: readonly FeedbackItem[]): Promise<void>;
  counts(): Promise<FeedbackCounts>;
}

export class SqliteFeedbackStore implements FeedbackStore {
  constructor(private readonly db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS cds_feedback (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      service_id TEXT NOT NULL,
      client_iss TEXT NOT NULL,
      card TEXT NOT NULL,
      outcome TEXT NOT NULL,
      accepted_suggestions TEXT,
      override_reason TEXT,
      user_comment TEXT,
      outcome_timestamp TEXT NOT NULL,
      received_at TEXT NOT NULL
    )`);
  }

  async record(serviceId: string, clientIss: string, items: readonly FeedbackItem[]): Promise<void> {
    const insert = this.db.prepare(
      `INSERT INTO cds_feedback (service_id, client_iss, card, outcome, accepted_suggestions, override_reason, user_comment, outcome_timestamp, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const now = new Date().toISOString();
    this.db.transaction(() => {
      for (const f of items) {
        insert.run(
          serviceId,
          clientIss,
          f.card,
          f.outcome,
          f.acceptedSuggestions ? JSON.stringify(f.acceptedSuggestions.map((s) => s.id)) : null,
          f.overrideReason?.reason?.code ?? null,
          f.overrideReason?.userComment ?? null,
          f.outcomeTimestamp,
          now,
        );
      }
    })();
  }

  async counts(): Promise<FeedbackCounts> {
    const rows = this.db
      .prepare(
        `SELECT service_id AS serviceId, outcome, override_reason AS reason, COUNT(*) AS count
         FROM cds_feedback GROUP BY service_id, outcome, override_reason ORDER BY service_id, outcome, override_reason`,
      )
      .all() as FeedbackCounts['byKey'];
    return { total: rows.reduce((a, r) => a + r.count, 0), byKey: rows };
  }
}

/** Shared by every service instance when the service runs on Redis (REDIS_URL). */
export class RedisFeedbackStore implements FeedbackStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'vbmd:cds:feedback',
  ) {}

  async record(serviceId: string, clientIss: string, items: readonly FeedbackItem[]): Promise<void> {
    const multi = this.redis.multi();
    const receivedAt = new Date().toISOString();
    for (const f of items) {
      multi.rpush(`${this.prefix}:items`, JSON.stringify({ serviceId, clientIss, receivedAt, ...f }));
      multi.hincrby(`${this.prefix}:counts`, JSON.stringify([serviceId, f.outcome, f.overrideReason?.reason?.code ?? null]), 1);
    }
    await multi.exec();
  }

  async counts(): Promise<FeedbackCounts> {
    const h = await this.redis.hgetall(`${this.prefix}:counts`);
    const byKey = Object.entries(h)
      .map(([k, v]) => {
        const [serviceId, outcome, reason] = JSON.parse(k) as [string, string, string | null];
        return { serviceId, outcome, reason, count: Number(v) };
      })
      .sort((a, b) => `${a.serviceId}${a.outcome}${a.reason}`.localeCompare(`${b.serviceId}${b.outcome}${b.reason}`));
    return { total: byKey.reduce((a, r) => a + r.count, 0), byKey };
  }
}
