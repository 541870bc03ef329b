import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ISSUED_CARD_TTL_MS, RedisFeedbackStore, SqliteFeedbackStore } from '../../cds-hooks/feedback-store.js';
import type { FeedbackStore, IssuedCard } from '../../cds-hooks/feedback-store.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';

/**
 * Issued cards and quiet periods in both stores the service runs on: SQLite (one node) and Redis (several
 * nodes share them, so feedback reaching another node than the hook is still checked).
 */
let redis: RedisHandle;
let conn: Redis;

beforeAll(async () => {
  redis = await startRedis();
  conn = new Redis(redis.url);
}, 30_000);
afterAll(async () => {
  conn?.disconnect();
  await redis?.stop();
});

const T = Date.parse('2026-03-01T00:00:00Z');
const card = (uuid: string, issuedAtMs = T): IssuedCard => ({
  uuid,
  serviceId: 'vbmd-patient-view',
  patientId: 'p1',
  suggestions: [{ uuid: `${uuid}-s`, kind: 'order-dxa' }],
  observationId: 'o1',
  issuedAtMs,
});

describe.each([
  ['SQLite', (): FeedbackStore => new SqliteFeedbackStore(new Database(':memory:'))],
  ['Redis', (): FeedbackStore => new RedisFeedbackStore(conn, `t${Date.now()}-${Math.random()}`)],
])('%s feedback store', (_name, make) => {
  it('remembers issued cards for ISSUED_CARD_TTL_MS and answers only those asked for', async () => {
    const s = make();
    await s.recordIssued([card('a'), card('b')]);
    const got = await s.issued(['a', 'x', 'a'], T + 1000);
    expect([...got.keys()]).toEqual(['a']);
    expect(got.get('a')).toEqual(card('a'));
    expect((await s.issued(['b'], T + ISSUED_CARD_TTL_MS + 1)).size).toBe(0);
    expect((await s.issued([], T)).size).toBe(0);
  });

  it('a quiet period per service and patient, until it ends', async () => {
    const s = make();
    await s.quiet({ serviceId: 'vbmd-patient-view', patientId: 'p1', untilMs: Date.now() + 60_000, observationId: 'o1', reason: 'already-treated' });
    const q = await s.quietFor('vbmd-patient-view', 'p1', Date.now());
    expect(q).toMatchObject({ observationId: 'o1', reason: 'already-treated' });
    expect(await s.quietFor('vbmd-patient-view', 'p2', Date.now())).toBeNull();
    expect(await s.quietFor('vbmd-order-sign', 'p1', Date.now())).toBeNull();
    expect(await s.quietFor('vbmd-patient-view', 'p1', q!.untilMs)).toBeNull();
  });
});
