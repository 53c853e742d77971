import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { RateLimitedError } from '../../lib/errors';
import { createCallerQuota, rateLimitHeaders, type CallerQuota } from '../../lib/ratelimit/caller-quota';
import { windowAt } from '../../lib/ratelimit/fixed-window';
import type { WarnLogger } from '../../lib/state/degraded';
import { createDocumentClient, keys } from '../../lib/state/table';
import { startTestDynamo, testCaller, unreachableEndpoint, type TestDynamo } from '../helpers/dynamo';

const PER_MINUTE_3 = { limit: 3, windowSeconds: 60 };
/** 15 s into a minute window, so the window ends 45 s later. */
const T0 = Date.parse('2026-12-03T10:00:15Z');

async function rejection(promise: Promise<unknown>): Promise<RateLimitedError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof RateLimitedError)) throw new Error(`expected RateLimitedError, got ${String(error)}`);
  return error;
}

describe('caller quota (fixed windows on dynalite)', () => {
  let dynamo: TestDynamo;
  let clock: number;
  const quota = (defaultPerCaller = PER_MINUTE_3): CallerQuota =>
    createCallerQuota({ client: dynamo.client, tableName: dynamo.tableName, defaultPerCaller, now: () => clock });

  beforeAll(async () => {
    dynamo = await startTestDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it('counts down, then refuses with Retry-After and the RateLimit fields until the window ends', async () => {
    clock = T0;
    const q = quota();
    const caller = testCaller({ subject: 'spender' });
    const decisions = [await q.consume(caller), await q.consume(caller), await q.consume(caller)];
    expect(decisions.map((d) => d.limiting.remaining)).toEqual([2, 1, 0]);
    expect(decisions[0]).toEqual({
      policies: [{ name: 'caller', rate: PER_MINUTE_3 }],
      limiting: { name: 'caller', rate: PER_MINUTE_3, remaining: 2, resetSeconds: 45 },
      degraded: false,
    });
    expect(rateLimitHeaders(decisions[0]!)).toEqual({ 'RateLimit-Policy': '"caller";q=3;w=60', RateLimit: '"caller";r=2;t=45' });

    clock = T0 + 5_000;
    const error = await rejection(q.consume(caller));
    expect(error.status).toBe(429);
    expect(error.retryAfterSeconds).toBe(40);
    expect(error.headers()).toEqual({ 'Retry-After': '40', 'RateLimit-Policy': '"caller";q=3;w=60', RateLimit: '"caller";r=0;t=40' });

    clock = T0 + 45_000; // the next window: the old window's counter no longer blocks
    expect((await q.consume(caller)).limiting.remaining).toBe(2);
  });

  it('is not blocked by a full counter left from a past window (no TTL: the window is in the key)', async () => {
    clock = T0;
    const caller = testCaller({ subject: 'returning' });
    const past = windowAt(PER_MINUTE_3, T0 - 60_000);
    await dynamo.client.send(
      new PutCommand({
        TableName: dynamo.tableName,
        Item: {
          pk: keys.callerQuota(caller.issuerName, caller.subject),
          sk: keys.quotaWindow(60, past.startSec),
          count: 1000,
          expiresAt: past.endMs / 1000,
        },
      }),
    );
    expect((await quota().consume(caller)).limiting.remaining).toBe(2);
  });

  it('keeps callers independent and applies the issuer perCaller override', async () => {
    clock = T0;
    const q = quota();
    const strict = { perCaller: { limit: 1, windowSeconds: 10 } };
    await q.consume(testCaller({ subject: 'one' }), strict);
    await rejection(q.consume(testCaller({ subject: 'one' }), strict));
    const other = await q.consume(testCaller({ subject: 'two' }), strict);
    expect(rateLimitHeaders(other)).toEqual({ 'RateLimit-Policy': '"caller";q=1;w=10', RateLimit: '"caller";r=0;t=5' });
    expect((await q.consume(testCaller({ issuerName: 'other', subject: 'one' }), strict)).limiting.remaining).toBe(0);
  });

  it('enforces the issuer quota across its callers and gives the refused caller its unit back', async () => {
    clock = T0;
    const q = quota({ limit: 5, windowSeconds: 60 });
    const limits = { perIssuer: { limit: 3, windowSeconds: 60 } };
    const issuerName = 'partner';
    const first = await q.consume(testCaller({ issuerName, subject: 'a' }), limits);
    expect(rateLimitHeaders(first)).toEqual({
      'RateLimit-Policy': '"caller";q=5;w=60, "issuer";q=3;w=60',
      RateLimit: '"issuer";r=2;t=45',
    });
    await q.consume(testCaller({ issuerName, subject: 'b' }), limits);
    await q.consume(testCaller({ issuerName, subject: 'c' }), limits);

    const error = await rejection(q.consume(testCaller({ issuerName, subject: 'a' }), limits));
    expect(error.message).toContain('issuer quota');
    expect(error.headers()).toEqual({
      'Retry-After': '45',
      'RateLimit-Policy': '"caller";q=5;w=60, "issuer";q=3;w=60',
      RateLimit: '"issuer";r=0;t=45',
    });
    // Without the issuer quota, caller "a" has spent exactly one request: the refused one was refunded.
    expect((await q.consume(testCaller({ issuerName, subject: 'a' }))).limiting.remaining).toBe(3);
  });

  it('allows exactly the limit when 50 consumes race from 5 containers', async () => {
    clock = T0;
    const containers = Array.from({ length: 5 }, () => quota({ limit: 10, windowSeconds: 60 }));
    const caller = testCaller({ subject: 'racer' });
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => containers[i % 5]!.consume(caller)));
    const allowed = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof RateLimitedError);
    expect(allowed).toHaveLength(10);
    expect(refused).toHaveLength(40);
    const remaining = allowed.map((r) => (r.status === 'fulfilled' ? r.value.limiting.remaining : -1)).sort((a, b) => a - b);
    expect(remaining).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('fails a request whose key DynamoDB refuses, without switching the container to its in-memory quotas', async () => {
    clock = T0;
    const warn = jest.fn<WarnLogger['warn']>();
    const q = createCallerQuota({ client: dynamo.client, tableName: dynamo.tableName, defaultPerCaller: PER_MINUTE_3, now: () => clock, logger: { warn } });
    // Over DynamoDB's 2048-byte partition-key limit.
    await expect(q.consume(testCaller({ subject: 'x'.repeat(2100) }))).rejects.toMatchObject({ name: 'ValidationException' });
    expect(await q.consume(testCaller({ subject: 'after-refusal' }))).toMatchObject({ degraded: false });
    expect(warn).not.toHaveBeenCalled();
    expect(q.stats()).toEqual({ failures: 0, fallbackDecisions: 0 });
  });

  it('fails open within the same quotas in memory when DynamoDB is unreachable, and logs it', async () => {
    clock = T0;
    const warn = jest.fn<WarnLogger['warn']>();
    const client = createDocumentClient({ endpoint: await unreachableEndpoint() });
    try {
      const q = createCallerQuota({
        client,
        tableName: dynamo.tableName,
        defaultPerCaller: { limit: 2, windowSeconds: 60 },
        now: () => clock,
        logger: { warn },
      });
      const caller = testCaller({ subject: 'offline' });
      expect(await q.consume(caller)).toMatchObject({ degraded: true, limiting: { remaining: 1 } });
      expect(await q.consume(caller)).toMatchObject({ degraded: true, limiting: { remaining: 0 } });
      expect((await rejection(q.consume(caller))).retryAfterSeconds).toBe(45);
      // One failure opened the breaker; the next decisions did not wait on DynamoDB again.
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ metric: 'StateDegraded', component: 'caller-quota', failures: 1 });
      expect(q.stats()).toEqual({ failures: 1, fallbackDecisions: 3 });
    } finally {
      client.destroy();
    }
  });
});
