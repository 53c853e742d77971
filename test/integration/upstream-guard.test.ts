import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { UpstreamBusyError } from '../../lib/errors';
import { createUpstreamGuard, type UpstreamGuardOptions } from '../../lib/ratelimit/upstream-guard';
import type { WarnLogger } from '../../lib/state/degraded';
import { createDocumentClient } from '../../lib/state/table';
import { maxInAnyWindow } from '../../local/arrivals';
import { spawnDynaliteProcess } from '../../local/dynalite-process';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

const FIVE_PER_SECOND = { limit: 5, windowSeconds: 1 };
const TWO_PER_SECOND = { limit: 2, windowSeconds: 1 };

describe('upstream guard (sliding window of slots on dynalite)', () => {
  let dynamo: TestDynamo;
  const guard = (tableName: string, overrides: Partial<UpstreamGuardOptions> = {}) =>
    createUpstreamGuard({
      client: dynamo.client,
      tableName,
      rate: FIVE_PER_SECOND,
      degraded: { perContainer: { limit: 1, windowSeconds: 1 } },
      ...overrides,
    });

  beforeAll(async () => {
    dynamo = await startTestDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it('lets no more than 5 of 200 concurrent acquisitions from 4 containers into any 1 s window', async () => {
    const tableName = await dynamo.freshTable();
    // 100 ms of margin: the recorded time is when the test's continuation runs, on a busy shared machine.
    const containers = Array.from({ length: 4 }, () => guard(tableName, { marginMs: 100 }));
    const start = Date.now();
    const deadline = start + 2600;
    const acquiredAt: number[] = [];
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, async (_, i) => {
        await containers[i % 4]!.acquire(deadline);
        acquiredAt.push(Date.now());
      }),
    );
    const busy = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(busy.every((reason) => reason instanceof UpstreamBusyError && reason.retryAfterSeconds > 0)).toBe(true);
    expect(acquiredAt.length + busy.length).toBe(200);
    expect(maxInAnyWindow(acquiredAt, 1000)).toBeLessThanOrEqual(5);
    // At least two full windows fit before the deadline: the guard must not be much stricter than the quota.
    expect(acquiredAt.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...acquiredAt) - start).toBeGreaterThan(1000);
  });

  it('waits for the next free slot when it frees before the deadline', async () => {
    const tableName = await dynamo.freshTable();
    const sleeps: number[] = [];
    const g = guard(tableName, {
      rate: TWO_PER_SECOND,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((resolve) => setTimeout(resolve, ms));
      },
    });
    const start = Date.now();
    await g.acquire(start + 3000);
    await g.acquire(start + 3000);
    await g.acquire(start + 3000);
    const waited = Date.now() - start;
    // One wait for the oldest slot (a timer may fire a millisecond early and add a tiny second one).
    expect(sleeps[0]).toBeGreaterThan(900);
    expect(waited).toBeGreaterThanOrEqual(1050);
    expect(waited).toBeLessThan(1600);
  });

  it('refuses at once with UpstreamBusyError and Retry-After when the next slot frees after the deadline', async () => {
    const tableName = await dynamo.freshTable();
    const g = guard(tableName, { rate: TWO_PER_SECOND, marginMs: 50 });
    await g.acquire(Date.now() + 3000);
    await g.acquire(Date.now() + 3000);
    const start = Date.now();
    const error = await g.acquire(start + 300).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(UpstreamBusyError);
    const busy = error as UpstreamBusyError;
    expect(busy.status).toBe(503);
    expect(busy.retryAfterSeconds).toBeGreaterThan(0.7);
    // The earliest slot frees one window plus the 50 ms margin after it was taken.
    expect(busy.retryAfterSeconds).toBeLessThanOrEqual(1.05);
    expect(busy.headers()).toEqual({ 'Retry-After': String(Math.max(1, Math.ceil(busy.retryAfterSeconds))) });
    expect(Date.now() - start).toBeLessThan(250);
  });

  it('moves the stamp to the real departure when the claim comes back late, so the next use stays a full window away', async () => {
    const tableName = await dynamo.freshTable();
    // A DynamoDB whose slot writes answer 300 ms late: the call would leave 300 ms after its stamp.
    const slow = createDocumentClient({ endpoint: dynamo.endpoint, timeouts: { connectionMs: 2000, requestMs: 10_000 } });
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'UpdateItemCommand') await new Promise((resolve) => setTimeout(resolve, 300));
        return result;
      },
      { step: 'initialize', name: 'slowSlotWrites' },
    );
    const one = { limit: 1, windowSeconds: 1 };
    const late = createUpstreamGuard({ client: slow, tableName, rate: one, marginMs: 100, degraded: { perContainer: one } });
    const other = guard(tableName, { rate: one, marginMs: 100 });
    try {
      await late.acquire(Date.now() + 3000);
      const firstDeparture = Date.now();
      await other.acquire(Date.now() + 3000);
      const secondDeparture = Date.now();
      // Stamped before the slow write, the slot would have freed ~300 ms too early.
      expect(secondDeparture - firstDeparture).toBeGreaterThanOrEqual(1000);
    } finally {
      slow.destroy();
    }
  });

  it('keeps serving at the per-container bound, with a warning, when DynamoDB dies mid-run', async () => {
    const child = await spawnDynaliteProcess();
    const client = createDocumentClient({ endpoint: child.endpoint, timeouts: { connectionMs: 2000, requestMs: 10_000 } });
    const warn = jest.fn<WarnLogger['warn']>();
    try {
      const g = createUpstreamGuard({
        client,
        tableName: child.tableName,
        rate: FIVE_PER_SECOND,
        degraded: { perContainer: TWO_PER_SECOND, probeAfterMs: 60_000 },
        logger: { warn },
      });
      for (let i = 0; i < 5; i++) await g.acquire(Date.now() + 1000);
      expect(warn).not.toHaveBeenCalled();

      await child.kill();
      const killedAt = Date.now();
      const degradedAt: number[] = [];
      while (Date.now() - killedAt < 2200) {
        try {
          await g.acquire(Date.now() + 1500);
          degradedAt.push(Date.now());
        } catch (error) {
          if (!(error instanceof UpstreamBusyError)) throw error;
        }
      }
      expect(maxInAnyWindow(degradedAt, 1000)).toBeLessThanOrEqual(2);
      expect(degradedAt.length).toBeGreaterThanOrEqual(4);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ metric: 'StateDegraded', component: 'upstream-guard', failures: 1 });
      expect(g.stats()).toEqual({ failures: 1, fallbackDecisions: degradedAt.length });
    } finally {
      client.destroy();
      await child.kill();
    }
  });
});
