import { BatchGetCommand, DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Degradation, type DegradationStats, type WarnLogger } from './state/degraded';
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
  /**
   * Stale-if-error, for the request path (see the class comment); how long to skip DynamoDB after a
   * failure defaults to 5 s. Without it (the admin command) a failed check rejects: an operator's
   * `list` must show what the table holds, never this container's memory.
   */
  degraded?: { logger: WarnLogger; probeAfterMs?: number };
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
 * Stale-if-error (with `degraded`): when DynamoDB fails (throttled, unreachable, timing out, or keys
 * left unprocessed), the check answers from the revocation items this container last read. A
 * revocation it has seen keeps refusing (until its own `expiresAt`, or until a later successful read
 * shows it lifted); a caller it has no revocation for is let through. The failure is logged as a
 * `StateDegraded` warning with counters, and DynamoDB is skipped for `probeAfterMs`.
 *
 * The trade-off: a revocation written during an outage cannot be read by anyone, so it takes effect
 * only once DynamoDB answers again, and a container that never saw an older revocation (a cold start
 * during the outage) lets that caller through too. The alternative, failing closed, turns every
 * DynamoDB outage (or a flood that throttles the table) into a full service outage. The issue chose
 * availability: an outage may silently disable the kill switch for what this container has not seen,
 * but never for what it has. Entitlements still apply, deny by default (`DynamoEntitlementStore`).
 */
export class DynamoRevocationStore implements RevocationStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CachedCheck>();
  private readonly degradation: Degradation | undefined;
  /**
   * The live revocation items read last, by item key: what a check falls back to. An entry leaves only
   * when a read finds the item gone or expired, so it is never forgotten while in force. Entries come
   * only from items operators wrote, so their number is bounded by the table's revocations, not by callers.
   */
  private readonly lastSeen = new Map<string, Item>();

  constructor(options: DynamoRevocationStoreOptions) {
    const cacheMs = options.cacheMs ?? 0;
    if (!(cacheMs >= 0 && cacheMs <= MAX_REVOCATION_CACHE_MS)) {
      throw new RangeError(`cacheMs must be between 0 and ${MAX_REVOCATION_CACHE_MS}, got ${cacheMs}`);
    }
    this.client = options.client;
    this.tableName = options.tableName;
    this.cacheMs = cacheMs;
    this.now = options.now ?? Date.now;
    if (options.degraded) {
      this.degradation = new Degradation({
        component: 'revocations',
        probeAfterMs: options.degraded.probeAfterMs ?? 5000,
        now: this.now,
        logger: options.degraded.logger,
      });
    }
  }

  async check(issuer: string, subject: string): Promise<Revocation | undefined> {
    const now = this.now();
    const cacheKey = `${issuer}\u0000${subject}`;
    const cached = this.cache.get(cacheKey);
    const items = cached && now - cached.fetchedAt < this.cacheMs ? cached.items : await this.read(issuer, subject, cacheKey, now);
    const live = items.find((item) => isLive(item, now));
    if (!live) return undefined;
    return { scope: live.sk === 'ISSUER' ? 'issuer' : 'caller', reason: readString(live, 'reason') ?? '' };
  }

  /** How often this container answered from memory; all zero without `degraded`. */
  stats(): DegradationStats {
    return this.degradation?.stats() ?? { failures: 0, fallbackDecisions: 0 };
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

  /** The issuer's and the caller's revocation items, issuer first: from DynamoDB, or from memory while it fails. */
  private async read(issuer: string, subject: string, cacheKey: string, now: number): Promise<Item[]> {
    const wanted = [keys.issuerRevocation(issuer), keys.callerRevocation(issuer, subject)];
    const degradation = this.degradation;
    if (!degradation?.active) {
      try {
        const items = await this.fetch(wanted);
        // A fallback answer is never cached: once DynamoDB answers again, so does the check.
        if (this.cacheMs > 0) this.remember(cacheKey, { fetchedAt: now, items });
        if (degradation) this.noteLastSeen(wanted, items, now);
        return items;
      } catch (error) {
        if (!degradation) throw error;
        degradation.absorb(error);
      }
    }
    degradation.recordFallbackDecision();
    return wanted.flatMap((key): Item[] => {
      const item = this.lastSeen.get(itemId(key));
      return item ? [item] : [];
    });
  }

  private noteLastSeen(wanted: readonly ItemKey[], items: readonly Item[], now: number): void {
    for (const key of wanted) {
      const item = items.find((found) => found.pk === key.pk && found.sk === key.sk);
      if (item && isLive(item, now)) this.lastSeen.set(itemId(key), item);
      else this.lastSeen.delete(itemId(key));
    }
  }

  private async fetch(wanted: ItemKey[]): Promise<Item[]> {
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

const itemId = (key: ItemKey): string => `${key.pk}\u0000${key.sk}`;
