import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Caller } from '../../lib/auth/caller';
import { createDocumentClient } from '../../lib/state/table';
import { createLocalTable, startLocalDynamo } from '../../local/dynalite';

export const ROOT = join(__dirname, '..', '..');
/** Runs a TypeScript entry point the way the package scripts do, on the Node running the tests. */
export const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

export interface TestDynamo {
  endpoint: string;
  tableName: string;
  client: DynamoDBDocumentClient;
  /** Another empty table in the same dynalite, for tests that need a clean slate. */
  freshTable(): Promise<string>;
  close(): Promise<void>;
}

const newTableName = (): string => `test-${randomUUID()}`;

/** dynalite in this process on 127.0.0.1 (free port) with a fresh table: one per test file, closed in afterAll. */
export async function startTestDynamo(): Promise<TestDynamo> {
  const tableName = newTableName();
  const local = await startLocalDynamo({ port: 0, tableName });
  // Generous timeouts: in-process dynalite shares a loaded test machine, and a timeout would (correctly)
  // switch the code under test to its fallback. Outages are simulated by refusing connections instead.
  const client = createDocumentClient({ endpoint: local.endpoint, timeouts: { connectionMs: 2000, requestMs: 10_000 } });
  return {
    endpoint: local.endpoint,
    tableName,
    client,
    async freshTable() {
      const name = newTableName();
      await createLocalTable(local.endpoint, name);
      return name;
    },
    async close() {
      client.destroy();
      await local.close();
    },
  };
}

/** A loopback endpoint where nothing listens: every DynamoDB call fails with ECONNREFUSED. */
export async function unreachableEndpoint(): Promise<string> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

export function testCaller(overrides: Partial<Caller> = {}): Caller {
  return {
    issuerName: 'acme',
    issuer: 'https://login.acme.example/',
    subject: 'alice',
    scopes: [],
    claimedInstanceIds: undefined,
    deviceId: undefined,
    ...overrides,
  };
}
