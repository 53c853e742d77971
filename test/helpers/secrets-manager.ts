import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback stand-in for AWS Secrets Manager speaking its JSON protocol (POST,
 * `X-Amz-Target: secretsmanager.GetSecretValue`, `application/x-amz-json-1.1`), so the real SDK client
 * is exercised instead of a mock. `state` steers the next answers.
 */
export interface SecretsManagerStandIn {
  endpoint: string;
  state: { secrets: Record<string, string>; fail: boolean; delayMs: number; calls: number; targets: string[] };
  /** The AWS variables that point the SDK's default client at this stand-in. */
  awsEnv: Record<string, string>;
  close(): Promise<void>;
}

export async function startSecretsManager(secrets: Record<string, string>): Promise<SecretsManagerStandIn> {
  const state: SecretsManagerStandIn['state'] = { secrets, fail: false, delayMs: 0, calls: 0, targets: [] };
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      state.calls++;
      state.targets.push(String(request.headers['x-amz-target']));
      const reply = (status: number, payload: unknown) =>
        // Unref'd: a reply held back to play a hang must not keep the test process alive.
        setTimeout(() => response.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1' }).end(JSON.stringify(payload)), state.delayMs).unref();
      const { SecretId } = (body ? JSON.parse(body) : {}) as { SecretId?: string };
      const secretString = SecretId === undefined ? undefined : state.secrets[SecretId];
      if (request.method !== 'POST' || request.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') {
        reply(400, { __type: 'UnknownOperationException', message: 'unknown operation' });
      } else if (state.fail) {
        reply(500, { __type: 'InternalServiceError', message: 'injected failure' });
      } else if (secretString === undefined) {
        reply(400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
      } else {
        reply(200, { ARN: SecretId, Name: SecretId!.split(':').at(-1), SecretString: secretString, VersionId: 'v1', CreatedDate: 1.7e9 });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    state,
    awsEnv: {
      AWS_REGION: 'ap-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
