import { QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UpstreamBusyError } from '../errors';
import type { Rate } from '../rate';
import { consoleWarnLogger, Degradation, type DegradationStats, type WarnLogger } from '../state/degraded';
import { isConditionalCheckFailed, keys, readNumber, readString, type Item } from '../state/table';

export interface UpstreamGuardOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** `UPSTREAM_RATE_LIMIT`: at most `limit` calls leave the fleet in any `windowSeconds` interval. */
  rate: Rate;
  /** `now` and `sleep` must agree (default: `Date.now` and `setTimeout`). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Extra spacing between two uses of a slot (default 75 ms, at least 15), see below. */
  marginMs?: number;
  /** The in-container limit used while DynamoDB is unavailable, and how long to wait before trying it again (default 5 s). */
  degraded: { perContainer: Rate; probeAfterMs?: number };
  logger?: WarnLogger;
}

export interface UpstreamGuard {
  /**
   * Call right before every upstream call attempt (retries included). Resolves when the call may go,
   * waiting for a free slot if one frees up by `deadlineEpochMs`; otherwise throws UpstreamBusyError
   * with the seconds until the next free slot.
   */
  acquire(deadlineEpochMs: number): Promise<void>;
  stats(): DegradationStats;
}

/**
 * The fleet-wide upstream quota: a sliding window kept as L = `rate.limit` slot items in DynamoDB
 * (`UPSTREAM` / `SLOT#0000`…), each holding `usedAt`, the moment it lets (or will let) a call go.
 *
 * acquire = one strongly consistent Query of all slots, then a conditional write on one of them:
 * - a slot free now (unused since `now - W - margin`): `SET usedAt = now`, condition still free;
 * - otherwise a reservation of the earliest slot's next use, `usedAt + W + margin`, if that is before
 *   the deadline (condition: the slot still holds the value read), then a sleep until that moment.
 *   Reserving ahead means a slot is reused the instant it frees, not a timer, a Query and a write
 *   later, and waiters line up in DynamoDB instead of racing for each freed slot.
 * Losing a race to another container only fails the condition: the next candidate is tried, then the
 * slots are read again. When every candidate frees after the deadline: UpstreamBusyError.
 *
 * Why this holds for any interval: consecutive stamps of a slot are at least W + margin apart
 * (conditional writes are atomic), and a call leaves only within a third of the margin after its
 * slot's stamp: a claim that comes back later (a slow write, a starved event loop) is abandoned, never
 * used, and the request claims again within its deadline. So consecutive calls through a slot leave at
 * least W + 2/3 margin apart, and no W interval holds more than L departures, whatever the concurrency.
 * The other two thirds absorb what the stamp cannot see: the spread of signing and network time to the
 * upstream, and clock skew between containers. The default 75 ms leaves 50 ms for that, enough for warm
 * connections on a busy host (measured by `npm run bench:guard`); a distant or jittery path to the
 * upstream can need more, so measure it there. The price of a larger margin: L calls per W + margin.
 *
 * Within one process, claims take turns (FIFO): only one talks to DynamoDB at a time, so a burst of
 * concurrent requests does not turn into a herd of conditional writes all but one would lose. The turn
 * is released before a reservation's sleep, so one process can hold several reservations in line.
 *
 * When DynamoDB fails (throttled, unreachable, timing out; anything but a failed condition), the
 * container falls back for `probeAfterMs` to an in-memory sliding window of `degraded.perContainer`,
 * logging a warning with counters. Bound: with N containers degraded, the fleet may exceed `rate` by
 * at most what their fallbacks admit, N × `degraded.perContainer.limit` per `perContainer.windowSeconds`.
 */
export function createUpstreamGuard(options: UpstreamGuardOptions): UpstreamGuard {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const marginMs = options.marginMs ?? 75;
  const lateAfterMs = marginMs / 3;
  const { rate, client, tableName } = options;
  const logger = options.logger ?? consoleWarnLogger;
  const windowMs = rate.windowSeconds * 1000;
  const degradation = new Degradation({
    component: 'upstream-guard',
    probeAfterMs: options.degraded.probeAfterMs ?? 5000,
    now,
    logger,
  });
  const fallback = createSlidingWindow(options.degraded.perContainer, marginMs, now, sleep);
  const turns = createTurns(now, rate.windowSeconds);
  let lateClaims = 0;

  /** `usedAt` of slots 0…L-1 (undefined: never used). Slots beyond L (an older, larger limit) are ignored. */
  async function readSlots(): Promise<(number | undefined)[]> {
    const usedAt = new Array<number | undefined>(rate.limit).fill(undefined);
    let startKey: Item | undefined;
    do {
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': keys.upstreamSlots },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const index = keys.slotIndexOf(readString(item, 'sk') ?? '');
        if (index >= 0 && index < rate.limit) usedAt[index] = readNumber(item, 'usedAt');
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return usedAt;
  }

  /** Stamps slot `index` with `stamp` if it still holds `seen` (undefined: never used) and is free by `stamp`; false when another container was first. */
  async function claim(index: number, seen: number | undefined, stamp: number): Promise<boolean> {
    try {
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: keys.upstreamSlots, sk: keys.upstreamSlot(index) },
          UpdateExpression: 'SET usedAt = :stamp',
          ConditionExpression: seen === undefined ? 'attribute_not_exists(usedAt)' : 'usedAt = :seen AND usedAt <= :freeBefore',
          ExpressionAttributeValues: { ':stamp': stamp, ...(seen !== undefined && { ':seen': seen, ':freeBefore': stamp - windowMs - marginMs }) },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /** The stamp of a slot this request now holds: now, or a later moment it must wait for. */
  async function claimShared(deadline: number): Promise<number> {
    for (;;) {
      const usedAt = await readSlots();
      const freeBefore = now() - windowMs - marginMs;
      const free = shuffle(usedAt.flatMap((used, index) => (used === undefined || used <= freeBefore ? [index] : [])));
      for (const index of free) {
        const stamp = now();
        if (await claim(index, usedAt[index], stamp)) return stamp;
      }
      if (free.length) continue;
      const byNextUse = usedAt.map((used, index) => ({ index, nextUse: (used ?? 0) + windowMs + marginMs })).sort((a, b) => a.nextUse - b.nextUse);
      for (const { index, nextUse } of byNextUse) {
        if (nextUse > deadline) throw new UpstreamBusyError((nextUse - now()) / 1000);
        if (await claim(index, usedAt[index], nextUse)) return nextUse;
      }
    }
  }

  /** True when the claim may be used: the call leaves within a third of the margin after its stamp. */
  async function departOn(stamp: number): Promise<boolean> {
    // A timer may fire a millisecond early; the call never leaves before its stamp.
    while (stamp > now()) await sleep(stamp - now());
    const lateMs = now() - stamp;
    if (lateMs <= lateAfterMs) return true;
    lateClaims += 1;
    logger.warn('Upstream slot claimed too late to use: claiming again', { metric: 'UpstreamSlotLate', lateMs, lateAfterMs, lateClaims });
    return false;
  }

  return {
    async acquire(deadline) {
      for (;;) {
        const release = await turns.take(deadline);
        let stamp: number;
        try {
          if (degradation.active) return await useFallback(deadline);
          try {
            stamp = await claimShared(deadline);
          } catch (error) {
            if (error instanceof UpstreamBusyError) throw error;
            degradation.absorb(error);
            return await useFallback(deadline);
          }
        } finally {
          release();
        }
        if (await departOn(stamp)) return;
        if (now() >= deadline) throw new UpstreamBusyError(rate.windowSeconds);
      }
    },
    stats: () => degradation.stats(),
  };

  function useFallback(deadline: number): Promise<void> {
    degradation.recordFallbackDecision();
    return fallback.acquire(deadline);
  }
}

/** One container's sliding window: the same slot rule as the shared one, over the last `limit` call times. */
function createSlidingWindow(rate: Rate, marginMs: number, now: () => number, sleep: (ms: number) => Promise<void>) {
  const windowMs = rate.windowSeconds * 1000;
  let times: number[] = [];
  return {
    async acquire(deadline: number): Promise<void> {
      for (;;) {
        const at = now();
        times = times.filter((t) => t > at - windowMs - marginMs);
        if (times.length < rate.limit) {
          times.push(at);
          return;
        }
        const nextFree = (times[0] ?? at) + windowMs + marginMs;
        if (nextFree > deadline) throw new UpstreamBusyError((nextFree - at) / 1000);
        await sleep(nextFree - at);
      }
    },
  };
}

/**
 * FIFO turns within the process. A waiter whose deadline passes leaves with UpstreamBusyError but
 * still hands the turn on once its predecessor is done, so the chain never breaks.
 */
function createTurns(now: () => number, retryAfterSeconds: number) {
  let tail: Promise<void> = Promise.resolve();
  return {
    async take(deadline: number): Promise<() => void> {
      const previous = tail;
      let release: () => void = () => undefined;
      tail = new Promise<void>((resolve) => {
        release = resolve;
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        previous.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), Math.max(0, deadline - now()));
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        void previous.then(release);
        throw new UpstreamBusyError(retryAfterSeconds);
      }
      return release;
    },
  };
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function shuffle<T>(values: T[]): T[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [values[i], values[j]] = [values[j] as T, values[i] as T];
  }
  return values;
}
