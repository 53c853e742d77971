import { parseArgs } from 'node:util';
import { startLocalDynamo } from './dynalite';

/**
 * dynalite as its own process, so that it can be killed from outside (tests of DynamoDB outages):
 *   tsx local/dynalite-main.ts --table <name> [--port <port>] [--path <dir>]
 * Prints the endpoint as its first stdout line once the table exists; stops on SIGINT / SIGTERM.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { table: { type: 'string' }, port: { type: 'string', default: '0' }, path: { type: 'string' } },
  });
  const tableName = values.table ?? process.env.TABLE_NAME;
  if (!tableName) throw new Error('--table <name> (or TABLE_NAME) is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0 to 65535, got "${values.port}"`);

  const local = await startLocalDynamo({ port, tableName, ...(values.path !== undefined && { path: values.path }) });
  console.log(local.endpoint);
  const stop = (): void => {
    void local.close().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(`dynalite: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
