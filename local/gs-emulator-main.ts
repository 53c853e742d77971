/**
 * Runs the gs emulator on its own: `npx tsx local/gs-emulator-main.ts`.
 * GS_EMULATOR_PORT (default LOCAL_PORTS.gsEmulator) and TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (default the
 * local key) configure it. One JSON line per call; tokens and keys never reach the log, and the SecretId is masked.
 */
import { LOCAL, LOCAL_PORTS } from '../lib/local-defaults';
import { startGsEmulator, type GsEmulatorCall } from './gs-emulator';

const maskSecretId = (secretId: string | undefined): string | undefined =>
  secretId === undefined ? undefined : `${secretId.slice(0, 4)}…`;

function logCall(call: GsEmulatorCall): void {
  console.log(
    JSON.stringify({
      time: new Date(call.at).toISOString(),
      ms: Date.now() - call.at,
      action: call.action,
      secretId: maskSecretId(call.secretId),
      instanceIds: call.instanceIds,
      outcome: call.outcome,
    }),
  );
}

async function main(): Promise<void> {
  const rawPort = process.env.GS_EMULATOR_PORT?.trim();
  const port = rawPort ? Number(rawPort) : LOCAL_PORTS.gsEmulator;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`GS_EMULATOR_PORT must be a port number, got "${rawPort}"`);

  const emulator = await startGsEmulator({
    port,
    credentials: [
      {
        secretId: process.env.TENCENTCLOUD_SECRET_ID?.trim() || LOCAL.secretId,
        secretKey: process.env.TENCENTCLOUD_SECRET_KEY?.trim() || LOCAL.secretKey,
      },
    ],
    onCall: logCall,
  });
  console.log(JSON.stringify({ message: 'gs emulator listening', url: emulator.url }));

  const stop = () => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error('gs emulator failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
