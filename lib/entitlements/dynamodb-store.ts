import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { instanceIdSchema } from '../request';
import { isConditionalCheckFailed, keys, readString, readStringSet, type Item, type ItemKey } from '../state/table';
import type { EntitlementStore } from './store';

export interface CallerGrant {
  subject: string;
  instanceIds: string[];
}

/**
 * Grants and pools in the DynamoDB table (key design in `lib/state/table.ts`). Reads are strongly
 * consistent, so a revoked instance is refused on the very next request. A DynamoDB failure is not
 * caught here: entitlements fail closed (the request fails) rather than guess who may use what.
 *
 * The admin operations change instance sets with `ADD` / `DELETE` on a string set, so concurrent
 * changes never lose each other's IDs. An instance set holds at most about 3,000 IDs (400 KB item).
 */
export class DynamoEntitlementStore implements EntitlementStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async grantedInstanceIds(issuer: string, subject: string): Promise<string[]> {
    return this.readSet(keys.grant(issuer, subject));
  }

  async poolInstanceIds(issuer: string): Promise<string[]> {
    return this.readSet(keys.pool(issuer));
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
      const instanceIds = await this.grantedInstanceIds(issuer, subject);
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
