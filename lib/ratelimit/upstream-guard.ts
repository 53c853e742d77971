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
  /** Extra spacing between two uses of a slot (default 100 ms), see below. */
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
 * (`UPSTREAM` / `SLOT#0000`…), each holding `usedAt`, the last time it let a call go.
 *
 * acquire = one strongly consistent Query of all slots → a random slot free since
 * `now - W - margin` → conditional `SET usedAt = :now` (condition: still free). Losing the race to
 * another container only fails the condition, so the next free slot is tried, then the slots re-read.
 * When none is free, the earliest one frees at `min(usedAt) + W + margin`: wait for it if that is
 * before the deadline, else UpstreamBusyError.
 *
 * Why this holds for any interval: each slot lets a call go at most once per W + margin, so any W
 * interval sees at most L calls, whatever the concurrency, because DynamoDB applies each conditional
 * write atomically. `marginMs` absorbs what the slot time does not capture: the spread between
 * stamping a slot and the call reaching the upstream, and clock skew between containers. A claim
 * whose write comes back more than margin/2 after its stamp moves the stamp to its real departure,
 * so DynamoDB latency and SDK retries never widen that spread; what remains for the margin is
 * signing and the network to the upstream. It must exceed the *variation* of that delay, not the delay
 * itself: 100 ms covers warm connections on a busy host (measured by `npm run bench:guard`); a cold
 * TLS handshake to a distant upstream can add more, so measure it there. The price of a larger
 * margin is small: L calls per W + margin instead of per W.
 *
 * Within one process, acquisitions take turns (FIFO): only one talks to DynamoDB at a time, so a
 * burst of concurrent requests does not turn into a herd of conditional writes all but one would lose.
 * A Lambda container serves one request at a time, so there this changes nothing.
 *
 * When DynamoDB fails (throttled, unreachable, timing out; anything but a failed condition), the
 * container falls back for `probeAfterMs` to an in-memory sliding window of `degraded.perContainer`,
 * logging a warning with counters. Bound: with N containers degraded, the fleet may exceed `rate` by
 * at most what their fallbacks admit, N × `degraded.perContainer.limit` per `perContainer.windowSeconds`.
 */
export function createUpstreamGuard(options: UpstreamGuardOptions): UpstreamGuard {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const marginMs = options.marginMs ?? 100;
  const { rate, client, tableName } = options;
  const windowMs = rate.windowSeconds * 1000;
  const degradation = new Degradation({
    component: 'upstream-guard',
    probeAfterMs: options.degraded.probeAfterMs ?? 5000,
    now,
    logger: options.logger ?? consoleWarnLogger,
  });
  const fallback = createSlidingWindow(options.degraded.perContainer, marginMs, now, sleep);
  const turns = createTurns(now, rate.windowSeconds);

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

  /** Claims a slot if it is still free at this instant; false when another container took it first or the claim came back too late to use. */
  async function tryTake(index: number): Promise<boolean> {
    const at = now();
    try {
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: keys.upstreamSlots, sk: keys.upstreamSlot(index) },
          UpdateExpression: 'SET usedAt = :at',
          ConditionExpression: 'attribute_not_exists(usedAt) OR usedAt <= :freeBefore',
          ExpressionAttributeValues: { ':at': at, ':freeBefore': at - windowMs - marginMs },
        }),
      );
      const claimedAt = now();
      // A claim that came back late lets the call leave long after its stamp, and the slot's next use
      // could then arrive upstream less than W after this one. Moving the stamp to the real departure
      // closes that gap: the move lands within one write, long before anyone may reuse the slot
      // (at + W + margin), and it is conditional on the slot still holding this claim.
      if (claimedAt - at > marginMs / 2) void restamp(index, at, claimedAt);
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  async function restamp(index: number, stampedAt: number, departedAt: number): Promise<void> {
    try {
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: keys.upstreamSlots, sk: keys.upstreamSlot(index) },
          UpdateExpression: 'SET usedAt = :departedAt',
          ConditionExpression: 'usedAt = :stampedAt',
          ExpressionAttributeValues: { ':departedAt': departedAt, ':stampedAt': stampedAt },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) degradation.recordFailure(error);
    }
  }

  async function acquireShared(deadline: number): Promise<void> {
    for (;;) {
      const usedAt = await readSlots();
      const freeBefore = now() - windowMs - marginMs;
      const free = shuffle(usedAt.flatMap((at, index) => (at === undefined || at <= freeBefore ? [index] : [])));
      for (const index of free) {
        if (await tryTake(index)) return;
      }
      if (free.length) continue;
      const nextFree = Math.min(...usedAt.map((at) => at ?? 0)) + windowMs + marginMs;
      if (nextFree > deadline) throw new UpstreamBusyError((nextFree - now()) / 1000);
      await sleep(nextFree - now());
    }
  }

  return {
    async acquire(deadline) {
      const release = await turns.take(deadline);
      try {
        if (!degradation.active) {
          try {
            return await acquireShared(deadline);
          } catch (error) {
            if (error instanceof UpstreamBusyError) throw error;
            degradation.recordFailure(error);
          }
        }
        degradation.recordFallbackDecision();
        await fallback.acquire(deadline);
      } finally {
        release();
      }
    },
    stats: () => degradation.stats(),
  };
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
