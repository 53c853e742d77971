import { DynamoDBClient, type CreateTableCommandInput, type UpdateTimeToLiveCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * The service's one DynamoDB table (`TABLE_NAME`): single-table design, string keys `pk` + `sk`.
 *
 * | item                | pk                                     | sk                              | attributes                         |
 * |---------------------|----------------------------------------|---------------------------------|------------------------------------|
 * | caller grant        | `GRANT#<issuer>`                       | `SUBJECT#<subject>`             | `instanceIds` (string set), `updatedAt` |
 * | partner pool        | `POOL#<issuer>`                        | `POOL`                          | `instanceIds` (string set), `updatedAt` |
 * | issuer revocation   | `REVOKED#<issuer>`                     | `ISSUER`                        | `reason`, `revokedAt`, `expiresAt?` |
 * | caller revocation   | `REVOKED#<issuer>`                     | `CALLER#<subject>`              | `reason`, `revokedAt`, `expiresAt?` |
 * | caller quota window | `QUOTA#CALLER#<issuerName>#<subject>`  | `WINDOW#<seconds>s#<startSec>`  | `count`, `expiresAt`               |
 * | issuer quota window | `QUOTA#ISSUER#<issuerName>`            | `WINDOW#<seconds>s#<startSec>`  | `count`, `expiresAt`               |
 * | upstream slot       | `UPSTREAM`                             | `SLOT#0000` … `SLOT#<L-1>`      | `usedAt` (epoch ms)                |
 *
 * Every key string holds at most one free-form value (issuer or subject), always last, so no two
 * distinct values can produce the same key even when they contain `#`. (`issuerName` is limited to
 * `[a-z0-9_-]` by the issuer registry, and a window key ends in digits.)
 *
 * Grants of one issuer share a partition so that `list --issuer` is one Query; an issuer's two
 * revocation items share one so a request checks both in one BatchGet. Quota counters get one
 * partition per caller (writes spread out); the upstream slots share one so a single Query reads them all.
 *
 * `expiresAt` (epoch seconds) is the table's TTL attribute. DynamoDB deletes expired items only
 * eventually (and local dynalite never does), so the code always compares `expiresAt` with its clock:
 * TTL is housekeeping, never logic.
 */
export const TTL_ATTRIBUTE = 'expiresAt';

export interface ItemKey {
  pk: string;
  sk: string;
}

export const keys = {
  grant: (issuer: string, subject: string): ItemKey => ({ pk: `GRANT#${issuer}`, sk: `SUBJECT#${subject}` }),
  grantsOf: (issuer: string): string => `GRANT#${issuer}`,
  subjectOf: (grantSk: string): string => grantSk.slice('SUBJECT#'.length),
  pool: (issuer: string): ItemKey => ({ pk: `POOL#${issuer}`, sk: 'POOL' }),
  issuerRevocation: (issuer: string): ItemKey => ({ pk: `REVOKED#${issuer}`, sk: 'ISSUER' }),
  callerRevocation: (issuer: string, subject: string): ItemKey => ({ pk: `REVOKED#${issuer}`, sk: `CALLER#${subject}` }),
  callerQuota: (issuerName: string, subject: string): string => `QUOTA#CALLER#${issuerName}#${subject}`,
  issuerQuota: (issuerName: string): string => `QUOTA#ISSUER#${issuerName}`,
  quotaWindow: (windowSeconds: number, windowStartSec: number): string => `WINDOW#${windowSeconds}s#${windowStartSec}`,
  upstreamSlots: 'UPSTREAM',
  upstreamSlot: (index: number): string => `SLOT#${String(index).padStart(4, '0')}`,
  slotIndexOf: (slotSk: string): number => Number(slotSk.slice('SLOT#'.length)),
};

export interface TableDefinition {
  /** The CreateTable request: on-demand billing, no indexes. */
  createTable: CreateTableCommandInput;
  /** Turns TTL on for `expiresAt` (a separate API call; CloudFormation's `TimeToLiveSpecification`). */
  timeToLive: UpdateTimeToLiveCommandInput;
}

/** The table as data, shared by local start-up, the tests and the deployment template. */
export function tableDefinition(tableName: string): TableDefinition {
  return {
    createTable: {
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    },
    timeToLive: {
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
    },
  };
}

export interface DocumentClientOptions {
  /** `DYNAMODB_ENDPOINT`; a loopback endpoint (local dynalite) gets dummy credentials and region `local`. */
  endpoint?: string;
  region?: string;
  /** Overrides the request-path timeouts, e.g. for the admin CLI run from afar. */
  timeouts?: { connectionMs: number; requestMs: number };
}

/**
 * Short timeouts because a request's whole budget is about 3 s and DynamoDB normally answers in
 * single-digit milliseconds: worst case about 2 × (200 + 800) ms plus one back-off before a call
 * fails and the caller falls back (or fails closed), instead of the SDK's default of no timeout.
 */
const CONNECTION_TIMEOUT_MS = 200;
const REQUEST_TIMEOUT_MS = 800;
const MAX_ATTEMPTS = 2;

/**
 * The DynamoDB document client. Create it once per container (at cold start) and share it: it keeps
 * its connections alive between invocations.
 */
export function createDocumentClient(options: DocumentClientOptions = {}): DynamoDBDocumentClient {
  const local = options.endpoint !== undefined && isLoopback(options.endpoint);
  const region = options.region ?? (local ? 'local' : undefined);
  const client = new DynamoDBClient({
    ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
    ...(region !== undefined && { region }),
    ...(local && { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: options.timeouts?.connectionMs ?? CONNECTION_TIMEOUT_MS,
      requestTimeout: options.timeouts?.requestMs ?? REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    }),
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

function isLoopback(endpoint: string): boolean {
  let host: string;
  try {
    host = new URL(endpoint).hostname;
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
}

/** A failed condition is an answer (quota spent, slot taken), not a DynamoDB failure. */
export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** Typed reads of document-client items, which the SDK types as `Record<string, any>`. */
export type Item = Record<string, unknown>;

export function readString(item: Item, name: string): string | undefined {
  const value = item[name];
  return typeof value === 'string' ? value : undefined;
}

export function readNumber(item: Item, name: string): number | undefined {
  const value = item[name];
  return typeof value === 'number' ? value : undefined;
}

/** A string set comes back as a `Set<string>`; absent (DynamoDB drops empty sets) reads as empty. Sorted. */
export function readStringSet(item: Item, name: string): string[] {
  const value = item[name];
  if (!(value instanceof Set)) return [];
  return [...value].filter((entry): entry is string => typeof entry === 'string').sort();
}

/** True while an item with an optional `expiresAt` (epoch seconds) is still in force at `nowMs`. */
export function isLive(item: Item, nowMs: number): boolean {
  const expiresAt = readNumber(item, TTL_ATTRIBUTE);
  return expiresAt === undefined || expiresAt * 1000 > nowMs;
}
