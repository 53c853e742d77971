import { LOCAL } from '../lib/local-defaults';
import { startLocalStack } from './stack';

/** `npm start`: the whole service on 127.0.0.1, then a dev JWT and a ready-to-paste curl. Ctrl-C stops it all. */
async function main(): Promise<void> {
  const stack = await startLocalStack();
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the local stack…`);
    void stack.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  const lines = [
    '',
    `API:        ${stack.apiUrl}  (POST /v1/stream-tokens, GET /v1/instances, GET /healthz)`,
    stack.emulator ? `gs emulator: ${stack.emulator.url}` : `upstream:   ${stack.apiEnv.GS_ENDPOINT}`,
    `demo page:  ${stack.demoPageUrl}`,
    stack.dynamo
      ? `DynamoDB:   ${stack.dynamo.endpoint} (dynalite, in memory), table ${stack.apiEnv.TABLE_NAME}`
      : `DynamoDB:   table ${stack.apiEnv.TABLE_NAME}`,
  ];
  if (stack.devIssuer) {
    const jwt = await stack.devIssuer.mint({ sub: LOCAL.demoSubject }, { expiresIn: '12h' });
    const body = JSON.stringify({ instanceIds: LOCAL.demoInstanceIds, deviceId: LOCAL.demoDeviceId });
    lines.push(
      `dev issuer: ${stack.devIssuer.issuer}`,
      '',
      `Dev JWT for "${LOCAL.demoSubject}" (valid 12 h, local only):`,
      jwt,
      '',
      'Request stream tokens for the two demo instances:',
      `curl -sS -X POST '${stack.apiUrl}/v1/stream-tokens' -H 'Authorization: Bearer ${jwt}' -H 'Content-Type: application/json' -d '${body}'`,
    );
  }
  if (stack.dynamo) {
    lines.push(
      '',
      'Revocations and quotas live in the local table (grants come from ENTITLEMENTS_FILE, by default local/demo-grants.json); revoke the demo user:',
      `TABLE_NAME=${stack.apiEnv.TABLE_NAME} DYNAMODB_ENDPOINT=${stack.dynamo.endpoint} npm run grants -- revoke-caller --issuer ${stack.devIssuer?.issuer ?? '<issuer>'} --subject ${LOCAL.demoSubject} --reason test`,
    );
  }
  lines.push('', 'Ctrl-C stops everything.');
  console.log(lines.join('\n'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
