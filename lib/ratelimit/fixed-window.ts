import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Rate } from '../rate';
import { isConditionalCheckFailed, keys, readNumber } from '../state/table';

/** One fixed window: `[startSec, startSec + windowSeconds)`, aligned to the epoch so every container agrees. */
export interface Window {
  startSec: number;
  endMs: number;
}

export function windowAt(rate: Rate, nowMs: number): Window {
  const startSec = Math.floor(nowMs / 1000 / rate.windowSeconds) * rate.windowSeconds;
  return { startSec, endMs: (startSec + rate.windowSeconds) * 1000 };
}

export interface WindowResult {
  allowed: boolean;
  /** Events counted in the window, this one included when allowed; at least `limit` when refused. */
  count: number;
  window: Window;
}

/** Counts events per key in fixed windows; refusing (not counting) an event once the window holds `limit`. */
export interface WindowCounter {
  consume(key: string, rate: Rate): Promise<WindowResult>;
  /** Gives back one event counted by `consume` in `window` (best effort). */
  refund(key: string, rate: Rate, window: Window): Promise<void>;
}

/** Counter items outlive their window by this much before TTL may delete them (TTL is housekeeping only). */
const EXPIRY_MARGIN_SECONDS = 60;

export interface DynamoFixedWindowOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  now?: () => number;
}

/**
 * The fleet-wide counter: one item per key and window (`pk` = key, `sk` = `WINDOW#<seconds>s#<start>`),
 * incremented by a conditional `ADD`, which DynamoDB applies atomically: however many containers race,
 * exactly `limit` increments succeed per window and the rest fail their condition (= over quota).
 * A new window is a new item, so an old window's count never blocks, whether or not TTL has removed it.
 */
export class DynamoFixedWindowCounter implements WindowCounter {
  private readonly now: () => number;

  constructor(private readonly options: DynamoFixedWindowOptions) {
    this.now = options.now ?? Date.now;
  }

  async consume(key: string, rate: Rate): Promise<WindowResult> {
    const window = windowAt(rate, this.now());
    try {
      const { Attributes: attributes } = await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: { pk: key, sk: keys.quotaWindow(rate.windowSeconds, window.startSec) },
          UpdateExpression: 'ADD #count :one SET expiresAt = :expiresAt',
          ConditionExpression: 'attribute_not_exists(#count) OR #count < :limit',
          ExpressionAttributeNames: { '#count': 'count' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':limit': rate.limit,
            ':expiresAt': window.endMs / 1000 + EXPIRY_MARGIN_SECONDS,
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return { allowed: true, count: readNumber(attributes ?? {}, 'count') ?? rate.limit, window };
    } catch (error) {
      if (isConditionalCheckFailed(error)) return { allowed: false, count: rate.limit, window };
      throw error;
    }
  }

  async refund(key: string, rate: Rate, window: Window): Promise<void> {
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: { pk: key, sk: keys.quotaWindow(rate.windowSeconds, window.startSec) },
          UpdateExpression: 'ADD #count :minusOne',
          ConditionExpression: '#count > :zero',
          ExpressionAttributeNames: { '#count': 'count' },
          ExpressionAttributeValues: { ':minusOne': -1, ':zero': 0 },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }
}

/** Bounds the fallback's memory; with one request at a time per container it is rarely approached. */
const MAX_MEMORY_KEYS = 10_000;

/** The same counter in one container's memory: the fallback while DynamoDB is unavailable. */
export class MemoryFixedWindowCounter implements WindowCounter {
  private readonly counts = new Map<string, { window: Window; count: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async consume(key: string, rate: Rate): Promise<WindowResult> {
    const window = windowAt(rate, this.now());
    const mapKey = `${key}|${rate.windowSeconds}`;
    const entry = this.counts.get(mapKey);
    const count = entry?.window.startSec === window.startSec ? entry.count : 0;
    if (count >= rate.limit) return { allowed: false, count, window };
    if (!entry) this.makeRoom();
    this.counts.set(mapKey, { window, count: count + 1 });
    return { allowed: true, count: count + 1, window };
  }

  async refund(key: string, rate: Rate, window: Window): Promise<void> {
    const entry = this.counts.get(`${key}|${rate.windowSeconds}`);
    if (entry?.window.startSec === window.startSec && entry.count > 0) entry.count -= 1;
  }

  /** Drops ended windows, then (only if still full) the oldest key: forgetting errs on the permissive side. */
  private makeRoom(): void {
    if (this.counts.size < MAX_MEMORY_KEYS) return;
    const now = this.now();
    for (const [mapKey, entry] of this.counts) {
      if (entry.window.endMs <= now) this.counts.delete(mapKey);
    }
    const oldest = this.counts.keys().next();
    if (this.counts.size >= MAX_MEMORY_KEYS && !oldest.done) this.counts.delete(oldest.value);
  }
}
