import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { LOCAL } from '../lib/local-defaults';
import { tableDefinition } from '../lib/state/table';

export interface LocalDynamo {
  /** `http://127.0.0.1:<port>`, for DYNAMODB_ENDPOINT. */
  endpoint: string;
  close(): Promise<void>;
}

export interface LocalDynamoOptions {
  /** 0 (default) picks a free port; `npm start` passes LOCAL_PORTS.dynamodb. */
  port?: number;
  tableName: string;
  /** A LevelDB directory to keep data between runs; in memory when absent. */
  path?: string;
}

/**
 * Starts dynalite in this process on 127.0.0.1 and creates the service's table (idempotent when `path`
 * keeps an earlier one). dynalite has no TTL: expired items stay, which the code already tolerates.
 */
export async function startLocalDynamo(options: LocalDynamoOptions): Promise<LocalDynamo> {
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path !== undefined && { path: options.path }),
  });
  server.listen(options.port ?? 0, LOCAL.host);
  await once(server, 'listening');
  const endpoint = `http://${LOCAL.host}:${(server.address() as AddressInfo).port}`;
  try {
    await createLocalTable(endpoint, options.tableName);
  } catch (error) {
    await closeServer(server);
    throw error;
  }
  return { endpoint, close: () => closeServer(server) };
}

/** Creates the service's table on a local endpoint (no-op when it exists) and waits until it is ACTIVE. */
export async function createLocalTable(endpoint: string, tableName: string): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    try {
      // Only CreateTable: dynalite does not implement UpdateTimeToLive (tableDefinition(...).timeToLive).
      await client.send(new CreateTableCommand(tableDefinition(tableName).createTable));
    } catch (error) {
      if (!(error instanceof Error && error.name === 'ResourceInUseException')) throw error;
    }
    for (;;) {
      const { Table: table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (table?.TableStatus === 'ACTIVE') return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    client.destroy();
  }
}

/** Stops listening and drops kept-alive connections, so clients see the server gone at once. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
