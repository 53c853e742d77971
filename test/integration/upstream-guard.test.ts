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
    // 150 ms of margin: the recorded time is when the test's continuation runs, on a busy shared machine.
    const containers = Array.from({ length: 4 }, () => guard(tableName, { marginMs: 150 }));
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
    // A 250 ms margin: a claim may come back up to 83 ms late and still be used, even on a loaded machine.
    const g = guard(tableName, {
      rate: TWO_PER_SECOND,
      marginMs: 250,
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
    // One wait, for the oldest slot's next use: one window and the margin after its first use (a timer
    // that fires a millisecond early adds a tiny second one, which is not a wait for another slot).
    expect(sleeps.filter((ms) => ms > 5)).toHaveLength(1);
    expect(waited).toBeGreaterThanOrEqual(1245);
    expect(waited).toBeLessThan(1800);
  });

  it('refuses at once with UpstreamBusyError and Retry-After when the next slot frees after the deadline', async () => {
    const tableName = await dynamo.freshTable();
    const g = guard(tableName, { rate: TWO_PER_SECOND, marginMs: 200 });
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
    // The earliest slot frees one window plus the 200 ms margin after it was taken.
    expect(busy.retryAfterSeconds).toBeLessThanOrEqual(1.2);
    expect(busy.headers()).toEqual({ 'Retry-After': String(Math.max(1, Math.ceil(busy.retryAfterSeconds))) });
    expect(Date.now() - start).toBeLessThan(250);
  });

  it('never uses a claim that came back late: the call claims again, so the next use stays a full window away', async () => {
    const tableName = await dynamo.freshTable();
    // A DynamoDB whose slot writes answer 300 ms late: used as it comes back, the claim would let the
    // call leave 300 ms after its stamp, and the slot's next use could arrive 300 ms too early.
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
    const warn = jest.fn<WarnLogger['warn']>();
    const late = createUpstreamGuard({ client: slow, tableName, rate: one, marginMs: 150, degraded: { perContainer: one }, logger: { warn } });
    const other = guard(tableName, { rate: one, marginMs: 150 });
    try {
      const start = Date.now();
      await late.acquire(start + 3000);
      const firstDeparture = Date.now();
      await other.acquire(Date.now() + 3000);
      const secondDeparture = Date.now();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ metric: 'UpstreamSlotLate', lateAfterMs: 50, lateClaims: 1 });
      expect((warn.mock.calls[0]?.[1] as { lateMs: number }).lateMs).toBeGreaterThanOrEqual(300);
      // The late claim was abandoned and the slot's next use reserved: one window and margin after the first stamp.
      expect(firstDeparture - start).toBeGreaterThanOrEqual(1145);
      expect(secondDeparture - firstDeparture).toBeGreaterThanOrEqual(1000);
    } finally {
      slow.destroy();
    }
  });

  it('lines waiters from 4 containers up by reservation: each waits once, and each slot is reused the moment it frees', async () => {
    const tableName = await dynamo.freshTable();
    const sleeps: number[] = [];
    const sleep = (ms: number) => {
      sleeps.push(ms);
      return new Promise<void>((resolve) => setTimeout(resolve, ms));
    };
    const containers = Array.from({ length: 4 }, () => guard(tableName, { rate: TWO_PER_SECOND, marginMs: 250, sleep }));
    const start = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        containers[i % 4]!.acquire(start + 4400).then(
          () => Date.now() - start,
          (reason: unknown) => reason,
        ),
      ),
    );
    const departures = outcomes.filter((outcome): outcome is number => typeof outcome === 'number').sort((a, b) => a - b);
    // Two slots, each used at 0, 1250, 2500 and 3750 ms; the next use (5000 ms) is past every deadline.
    expect(departures).toHaveLength(8);
    expect(outcomes.filter((outcome) => outcome instanceof UpstreamBusyError)).toHaveLength(4);
    departures.forEach((at, i) => expect(Math.abs(at - Math.floor(i / 2) * 1250)).toBeLessThan(150));
    expect(maxInAnyWindow(departures, 1000)).toBeLessThanOrEqual(2);
    // One sleep per reserved use: no waiter woke to race the others for a freed slot and lose.
    expect(sleeps.filter((ms) => ms > 5)).toHaveLength(6);
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
        // Wide enough that no claim comes back too late to use on a loaded machine (that is another test's subject).
        marginMs: 250,
        degraded: { perContainer: TWO_PER_SECOND, probeAfterMs: 60_000 },
        logger: { warn },
      });
      for (let i = 0; i < 5; i++) await g.acquire(Date.now() + 2000);
      expect(warn).not.toHaveBeenCalled();

      await child.kill();
      const killedAt = Date.now();
      const degradedAt: number[] = [];
      while (Date.now() - killedAt < 2600) {
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
