import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
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

export interface DynaliteProcess {
  endpoint: string;
  tableName: string;
  /** SIGKILL: the table vanishes mid-run, as an outage would look to the service. */
  kill(): Promise<void>;
}

/**
 * dynalite as a child process (`local/dynalite-main.ts`), so a test can kill it. `--import tsx` keeps
 * the server in the spawned process itself (the tsx CLI would run it in a grandchild that outlives a kill).
 */
export async function spawnDynaliteProcess(): Promise<DynaliteProcess> {
  const tableName = newTableName();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'local', 'dynalite-main.ts'), '--table', tableName], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const [endpoint] = (await Promise.race([
    once(lines, 'line'),
    exited.then(() => {
      throw new Error('dynalite child exited before printing its endpoint');
    }),
  ])) as [string];
  lines.close();
  return {
    endpoint,
    tableName,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
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

/** The largest number of `times` (ms) falling in any closed interval of `windowMs`. */
export function maxInAnyWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] ?? 0) - (sorted[start] ?? 0) > windowMs) start++;
    max = Math.max(max, end - start + 1);
  }
  return max;
}
