import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { instanceIdSchema } from '../request';
import { Degradation, type DegradationStats, type WarnLogger } from '../state/degraded';
import { isConditionalCheckFailed, keys, readString, readStringSet, type Item, type ItemKey } from '../state/table';
import type { EntitlementStore } from './store';

export interface CallerGrant {
  subject: string;
  instanceIds: string[];
}

/** How old a remembered grant or pool may be and still be served while DynamoDB fails. */
export const MAX_STALE_ENTITLEMENT_MS = 15 * 60_000;
/** Caps the memory of last answers; a forgotten one only means "deny" during an outage. */
const MAX_REMEMBERED_SETS = 1000;

export interface DynamoEntitlementStoreOptions {
  /**
   * Stale-if-error for the two port reads, for the request path (see the class comment); how long to
   * skip DynamoDB after a failure defaults to 5 s. Without it (the admin command) they reject on a
   * DynamoDB failure, as the admin operations always do: an operator must see the table, not a memory.
   */
  degraded?: { logger: WarnLogger; probeAfterMs?: number };
  now?: () => number;
}

interface RememberedSet {
  readAt: number;
  instanceIds: string[];
}

/**
 * Grants and pools in the DynamoDB table (key design in `lib/state/table.ts`). Reads are strongly
 * consistent, so a revoked instance is refused on the very next request.
 *
 * Stale-if-error (with `degraded`): when DynamoDB fails (throttled, unreachable, timing out),
 * `grantedInstanceIds` and `poolInstanceIds` answer with the last set this container read for that
 * grant or pool if it is at most MAX_STALE_ENTITLEMENT_MS (15 min) old, and otherwise with nothing:
 * deny by default, so a caller this container has not served recently gets instance_not_allowed. The
 * failure is logged as a `StateDegraded` warning with counters and DynamoDB is skipped for
 * `probeAfterMs`. The price: during an outage a grant changed in the last 15 minutes may be served as
 * it was when this container last read it (an instance removed meanwhile is still allowed, one added is
 * not yet), and nothing changed during the outage is seen until DynamoDB answers again.
 *
 * The admin operations change instance sets with `ADD` / `DELETE` on a string set, so concurrent
 * changes never lose each other's IDs. An instance set holds at most about 3,000 IDs (400 KB item).
 */
export class DynamoEntitlementStore implements EntitlementStore {
  private readonly now: () => number;
  private readonly degradation: Degradation | undefined;
  /** The last set read per grant or pool key, oldest first (insertion order). */
  private readonly remembered = new Map<string, RememberedSet>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: DynamoEntitlementStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    if (options.degraded) {
      this.degradation = new Degradation({
        component: 'entitlements',
        probeAfterMs: options.degraded.probeAfterMs ?? 5000,
        now: this.now,
        logger: options.degraded.logger,
      });
    }
  }

  async grantedInstanceIds(issuer: string, subject: string): Promise<string[]> {
    return this.readOrRecall(keys.grant(issuer, subject));
  }

  async poolInstanceIds(issuer: string): Promise<string[]> {
    return this.readOrRecall(keys.pool(issuer));
  }

  /** How often this container answered from memory; all zero without `degraded`. */
  stats(): DegradationStats {
    return this.degradation?.stats() ?? { failures: 0, fallbackDecisions: 0 };
  }

  /** Adds instances to a caller's grant; returns the caller's whole grant afterwards. */
  async grantInstances(issuer: string, subject: string, instanceIds: readonly string[]): Promise<string[]> {
    return this.addToSet(keys.grant(issuer, subject), instanceIds);
  }

  /** Removes instances from a caller's grant; returns what is left. */
  async revokeInstances(issuer: string, subject: string, instanceIds: readonly string[]): Promise<string[]> {
    return this.deleteFromSet(keys.grant(issuer, subject), instanceIds);
  }

  /** A caller's grant (`subject` given) or every grant of the issuer, sorted by subject. */
  async listGrants(issuer: string, subject?: string): Promise<CallerGrant[]> {
    if (subject !== undefined) {
      const instanceIds = await this.readSet(keys.grant(issuer, subject));
      return instanceIds.length ? [{ subject, instanceIds }] : [];
    }
    const grants: CallerGrant[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': keys.grantsOf(issuer) },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const instanceIds = readStringSet(item, 'instanceIds');
        if (instanceIds.length) grants.push({ subject: keys.subjectOf(readString(item, 'sk') ?? ''), instanceIds });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return grants.sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
  }

  /** Replaces an issuer's pool; an empty list deletes it. Returns the new pool. */
  async setPool(issuer: string, instanceIds: readonly string[]): Promise<string[]> {
    const key = keys.pool(issuer);
    if (instanceIds.length === 0) {
      await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: key }));
      return [];
    }
    const ids = validIds(instanceIds);
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...key, instanceIds: new Set(ids), updatedAt: new Date().toISOString() },
      }),
    );
    return [...ids].sort();
  }

  async addPoolInstances(issuer: string, instanceIds: readonly string[]): Promise<string[]> {
    return this.addToSet(keys.pool(issuer), instanceIds);
  }

  async removePoolInstances(issuer: string, instanceIds: readonly string[]): Promise<string[]> {
    return this.deleteFromSet(keys.pool(issuer), instanceIds);
  }

  /** The set from DynamoDB, or while it fails the last one read if recent enough, else empty (deny). */
  private async readOrRecall(key: ItemKey): Promise<string[]> {
    const degradation = this.degradation;
    const id = `${key.pk}\u0000${key.sk}`;
    if (!degradation?.active) {
      // Aged from before the read: the answer is at least that fresh, never fresher than claimed.
      const readAt = this.now();
      try {
        const instanceIds = await this.readSet(key);
        if (degradation) this.remember(id, { readAt, instanceIds });
        return instanceIds;
      } catch (error) {
        if (!degradation) throw error;
        degradation.absorb(error);
      }
    }
    degradation.recordFallbackDecision();
    const last = this.remembered.get(id);
    return last && this.now() - last.readAt <= MAX_STALE_ENTITLEMENT_MS ? [...last.instanceIds] : [];
  }

  private remember(id: string, entry: RememberedSet): void {
    this.remembered.delete(id);
    if (this.remembered.size >= MAX_REMEMBERED_SETS) {
      const oldest = this.remembered.keys().next();
      if (!oldest.done) this.remembered.delete(oldest.value);
    }
    this.remembered.set(id, entry);
  }

  private async readSet(key: ItemKey): Promise<string[]> {
    const { Item: item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true, ProjectionExpression: 'instanceIds' }),
    );
    return item ? readStringSet(item, 'instanceIds') : [];
  }

  private async addToSet(key: ItemKey, instanceIds: readonly string[]): Promise<string[]> {
    const { Attributes: attributes } = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key,
        UpdateExpression: 'ADD instanceIds :ids SET updatedAt = :now',
        ExpressionAttributeValues: { ':ids': new Set(validIds(instanceIds)), ':now': new Date().toISOString() },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return attributes ? readStringSet(attributes, 'instanceIds') : [];
  }

  /** Removing from a set that does not exist is a no-op (no item is created); an emptied set's item is deleted. */
  private async deleteFromSet(key: ItemKey, instanceIds: readonly string[]): Promise<string[]> {
    let remaining: string[];
    try {
      const { Attributes: attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: 'DELETE instanceIds :ids SET updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':ids': new Set(validIds(instanceIds)), ':now': new Date().toISOString() },
          ReturnValues: 'ALL_NEW',
        }),
      );
      remaining = attributes ? readStringSet(attributes, 'instanceIds') : [];
    } catch (error) {
      if (isConditionalCheckFailed(error)) return [];
      throw error;
    }
    if (remaining.length === 0) {
      // Conditional so that an ADD racing in between is not thrown away with the empty item.
      try {
        await this.client.send(
          new DeleteCommand({ TableName: this.tableName, Key: key, ConditionExpression: 'attribute_not_exists(instanceIds)' }),
        );
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    }
    return remaining;
  }
}

/** DynamoDB rejects empty sets, and a malformed ID could never be requested: both are refused up front. */
function validIds(instanceIds: readonly string[]): string[] {
  if (instanceIds.length === 0) throw new RangeError('at least one instance ID is required');
  for (const id of instanceIds) {
    if (!instanceIdSchema.safeParse(id).success) {
      throw new RangeError(`"${id}" is not a valid instance ID (1–128 characters of A-Z a-z 0-9 _ - . :)`);
    }
  }
  return [...new Set(instanceIds)];
}
