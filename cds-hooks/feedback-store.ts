import type { Database } from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type { FeedbackItem } from './hook-request.js';

/**
 * CDS feedback (POST /cds-services/{id}/feedback): every item is kept (which card, accepted or overridden,
 * which suggestion, which override reason, the clinician's comment) and counted per service, outcome and
 * reason, so a site can see whether the alert is acted on or overridden and why.
 * Also kept: the cards this service issued (so feedback is accepted only for uuids it gave out, and for
 * suggestions of that card), and per patient the quiet period an override with a reason starts.
 */
export interface FeedbackCounts {
  total: number;
  byKey: { serviceId: string; outcome: string; reason: string | null; count: number }[];
}

export interface IssuedCard {
  uuid: string;
  serviceId: string;
  patientId: string;
  /** Suggestion uuids of this card and what each suggests (e.g. order-dxa). */
  suggestions: { uuid: string; kind: string }[];
  /** The result the card was about; a newer result ends a quiet period. */
  observationId: string | null;
  issuedAtMs: number;
}

export interface QuietEntry {
  patientId: string;
  serviceId: string;
  untilMs: number;
  observationId: string | null;
  reason: string;
}

/** How long an issued card's uuid is accepted in feedback. */
export const ISSUED_CARD_TTL_MS = 30 * 86_400_000;

export interface FeedbackStore {
  record(serviceId: string, clientIss: string, items: readonly FeedbackItem[]): Promise<void>;
  counts(): Promise<FeedbackCounts>;
  recordIssued(cards: readonly IssuedCard[]): Promise<void>;
  /** The issued cards among `uuids` that have not expired. */
  issued(uuids: readonly string[], nowMs: number): Promise<Map<string, IssuedCard>>;
  quiet(entry: QuietEntry): Promise<void>;
  /** The patient's quiet period for this service, if it has not ended. */
  quietFor(serviceId: string, patientId: string, nowMs: number): Promise<QuietEntry | null>;
}

export class SqliteFeedbackStore implements FeedbackStore {
  constructor(private readonly db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS cds_issued_card (
      uuid TEXT PRIMARY KEY,
      service_id TEXT NOT NULL,
      patient_id TEXT NOT NULL,
      suggestions TEXT NOT NULL,
      observation_id TEXT,
      issued_at_ms INTEGER NOT NULL
    )`);
    db.exec('CREATE INDEX IF NOT EXISTS cds_issued_card_at ON cds_issued_card (issued_at_ms)');
    db.exec(`CREATE TABLE IF NOT EXISTS cds_quiet (
      service_id TEXT NOT NULL,
      patient_id TEXT NOT NULL,
      until_ms INTEGER NOT NULL,
      observation_id TEXT,
      reason TEXT NOT NULL,
      PRIMARY KEY (service_id, patient_id)
    )`);
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

  async recordIssued(cards: readonly IssuedCard[]): Promise<void> {
    if (cards.length === 0) return;
    const insert = this.db.prepare(
      'INSERT OR REPLACE INTO cds_issued_card (uuid, service_id, patient_id, suggestions, observation_id, issued_at_ms) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const oldest = Math.min(...cards.map((c) => c.issuedAtMs)) - ISSUED_CARD_TTL_MS;
    this.db.transaction(() => {
      for (const c of cards) insert.run(c.uuid, c.serviceId, c.patientId, JSON.stringify(c.suggestions), c.observationId, c.issuedAtMs);
      // Expired cards go as new ones come: the table holds about ISSUED_CARD_TTL_MS of cards.
      this.db.prepare('DELETE FROM cds_issued_card WHERE issued_at_ms < ?').run(oldest);
    })();
  }

  async issued(uuids: readonly string[], nowMs: number): Promise<Map<string, IssuedCard>> {
    const out = new Map<string, IssuedCard>();
    const get = this.db.prepare('SELECT uuid, service_id, patient_id, suggestions, observation_id, issued_at_ms FROM cds_issued_card WHERE uuid = ?');
    for (const u of new Set(uuids)) {
      const r = get.get(u) as { uuid: string; service_id: string; patient_id: string; suggestions: string; observation_id: string | null; issued_at_ms: number } | undefined;
      if (!r || r.issued_at_ms < nowMs - ISSUED_CARD_TTL_MS) continue;
      out.set(u, {
        uuid: r.uuid,
        serviceId: r.service_id,
        patientId: r.patient_id,
        suggestions: JSON.parse(r.suggestions) as IssuedCard['suggestions'],
        observationId: r.observation_id,
        issuedAtMs: r.issued_at_ms,
      });
    }
    return out;
  }

  async quiet(e: QuietEntry): Promise<void> {
    this.db
      .prepare('INSERT OR REPLACE INTO cds_quiet (service_id, patient_id, until_ms, observation_id, reason) VALUES (?, ?, ?, ?, ?)')
      .run(e.serviceId, e.patientId, e.untilMs, e.observationId, e.reason);
  }

  async quietFor(serviceId: string, patientId: string, nowMs: number): Promise<QuietEntry | null> {
    const r = this.db.prepare('SELECT until_ms, observation_id, reason FROM cds_quiet WHERE service_id = ? AND patient_id = ?').get(serviceId, patientId) as
      | { until_ms: number; observation_id: string | null; reason: string }
      | undefined;
    if (!r || r.until_ms <= nowMs) return null;
    return { serviceId, patientId, untilMs: r.until_ms, observationId: r.observation_id, reason: r.reason };
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

  async recordIssued(cards: readonly IssuedCard[]): Promise<void> {
    if (cards.length === 0) return;
    const multi = this.redis.multi();
    for (const c of cards) multi.set(`${this.prefix}:card:${c.uuid}`, JSON.stringify(c), 'PX', ISSUED_CARD_TTL_MS);
    await multi.exec();
  }

  async issued(uuids: readonly string[], nowMs: number): Promise<Map<string, IssuedCard>> {
    const unique = [...new Set(uuids)];
    const out = new Map<string, IssuedCard>();
    if (unique.length === 0) return out;
    const values = await this.redis.mget(...unique.map((u) => `${this.prefix}:card:${u}`));
    values.forEach((v, i) => {
      if (!v) return;
      const c = JSON.parse(v) as IssuedCard;
      if (c.issuedAtMs >= nowMs - ISSUED_CARD_TTL_MS) out.set(unique[i]!, c);
    });
    return out;
  }

  async quiet(e: QuietEntry): Promise<void> {
    const ttl = Math.max(1, e.untilMs - Date.now());
    await this.redis.set(`${this.prefix}:quiet:${e.serviceId}:${e.patientId}`, JSON.stringify(e), 'PX', ttl);
  }

  async quietFor(serviceId: string, patientId: string, nowMs: number): Promise<QuietEntry | null> {
    const v = await this.redis.get(`${this.prefix}:quiet:${serviceId}:${patientId}`);
    if (!v) return null;
    const e = JSON.parse(v) as QuietEntry;
    return e.untilMs > nowMs ? e : null;
  }
}
