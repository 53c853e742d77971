import { BatchGetCommand, DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isLive, keys, readString, TTL_ATTRIBUTE, type Item, type ItemKey } from './state/table';

export type RevocationScope = 'caller' | 'issuer';

export interface Revocation {
  scope: RevocationScope;
  /** The operator's reason: for logs and operators, never shown to the caller. */
  reason: string;
}

/** The kill switch, checked before anything else on every request. */
export interface RevocationStore {
  /** The revocation in force for this caller (its issuer's first), or undefined. */
  check(issuer: string, subject: string): Promise<Revocation | undefined>;
}

/** The longest in-container cache allowed: a revocation reaches every container within this bound. */
export const MAX_REVOCATION_CACHE_MS = 5000;

const MAX_REASON_LENGTH = 1000;
/** Caps the cache's memory; a container serving one request at a time rarely sees this many callers. */
const MAX_CACHED_CALLERS = 1000;

export interface DynamoRevocationStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /**
   * How long a container may reuse a check's answer (0 to MAX_REVOCATION_CACHE_MS, default 0).
   * A revocation written at time T refuses every request that starts at or after T + cacheMs, in every
   * container; with 0 it refuses the very next request. Unrevoking is delayed by the same bound.
   */
  cacheMs?: number;
  now?: () => number;
}

export interface RevokeOptions {
  reason: string;
  /** When the revocation lapses by itself; absent means until unrevoked. */
  expiresAt?: Date;
}

interface CachedCheck {
  fetchedAt: number;
  /** The revocation items found, issuer first; their expiry is re-checked on every use. */
  items: Item[];
}

/**
 * Revocations in the DynamoDB table (key design in `lib/state/table.ts`). A check is one strongly
 * consistent BatchGet of the issuer's and the caller's revocation items.
 *
 * Fails closed: when DynamoDB cannot answer, `check` rejects and the request fails, because a kill
 * switch that an outage (or a flood that throttles the table) could switch off would not be one.
 */
export class DynamoRevocationStore implements RevocationStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CachedCheck>();

  constructor(options: DynamoRevocationStoreOptions) {
    const cacheMs = options.cacheMs ?? 0;
    if (!(cacheMs >= 0 && cacheMs <= MAX_REVOCATION_CACHE_MS)) {
      throw new RangeError(`cacheMs must be between 0 and ${MAX_REVOCATION_CACHE_MS}, got ${cacheMs}`);
    }
    this.client = options.client;
    this.tableName = options.tableName;
    this.cacheMs = cacheMs;
    this.now = options.now ?? Date.now;
  }

  async check(issuer: string, subject: string): Promise<Revocation | undefined> {
    const now = this.now();
    const cacheKey = `${issuer}\u0000${subject}`;
    let entry = this.cache.get(cacheKey);
    if (!entry || now - entry.fetchedAt >= this.cacheMs) {
      entry = { fetchedAt: now, items: await this.fetch(issuer, subject) };
      if (this.cacheMs > 0) this.remember(cacheKey, entry);
    }
    const live = entry.items.find((item) => isLive(item, now));
    if (!live) return undefined;
    return { scope: live.sk === 'ISSUER' ? 'issuer' : 'caller', reason: readString(live, 'reason') ?? '' };
  }

  async revokeCaller(issuer: string, subject: string, options: RevokeOptions): Promise<void> {
    await this.put(keys.callerRevocation(issuer, subject), options);
  }

  async revokeIssuer(issuer: string, options: RevokeOptions): Promise<void> {
    await this.put(keys.issuerRevocation(issuer), options);
  }

  /** Lifts a caller's revocation; false when there was none. */
  async unrevokeCaller(issuer: string, subject: string): Promise<boolean> {
    return this.delete(keys.callerRevocation(issuer, subject));
  }

  /** Lifts an issuer-wide revocation; false when there was none. */
  async unrevokeIssuer(issuer: string): Promise<boolean> {
    return this.delete(keys.issuerRevocation(issuer));
  }

  private async fetch(issuer: string, subject: string): Promise<Item[]> {
    const wanted = [keys.issuerRevocation(issuer), keys.callerRevocation(issuer, subject)];
    const result = await this.client.send(
      new BatchGetCommand({
        RequestItems: { [this.tableName]: { Keys: wanted, ConsistentRead: true } },
      }),
    );
    // DynamoDB may leave keys unprocessed when throttled: an incomplete answer must not read as "not revoked".
    if (Object.values(result.UnprocessedKeys ?? {}).some((request) => request.Keys?.length)) {
      throw new Error('Revocation check incomplete: DynamoDB left keys unprocessed');
    }
    const found: Item[] = result.Responses?.[this.tableName] ?? [];
    return wanted.flatMap((key) => found.filter((item) => item.pk === key.pk && item.sk === key.sk));
  }

  private remember(cacheKey: string, entry: CachedCheck): void {
    this.cache.delete(cacheKey);
    if (this.cache.size >= MAX_CACHED_CALLERS) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(cacheKey, entry);
  }

  private async put(key: ItemKey, options: RevokeOptions): Promise<void> {
    const reason = options.reason.trim();
    if (!reason || reason.length > MAX_REASON_LENGTH) {
      throw new RangeError(`a reason of 1 to ${MAX_REASON_LENGTH} characters is required`);
    }
    const item: Item = { ...key, reason, revokedAt: new Date(this.now()).toISOString() };
    if (options.expiresAt) item[TTL_ATTRIBUTE] = Math.ceil(options.expiresAt.getTime() / 1000);
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: item }));
  }

  private async delete(key: ItemKey): Promise<boolean> {
    const { Attributes: old } = await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: key, ReturnValues: 'ALL_OLD' }),
    );
    return old !== undefined && isLive(old, this.now());
  }
}
