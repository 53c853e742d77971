import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

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
export async function spawnDynaliteProcess(tableName = `test-${randomUUID()}`): Promise<DynaliteProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'dynalite-main.ts'), '--table', tableName], {
    cwd: join(__dirname, '..'),
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
