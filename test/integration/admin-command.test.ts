import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGsEmulator, type GsEmulator } from '../../local/gs-emulator';
import { ROOT, startTestDynamo, TSX, type TestDynamo } from '../helpers/dynamo';
import { startSecretsManager, type SecretsManagerStandIn } from '../helpers/secrets-manager';
import { createEcKey, jwksOf, signToken, type TestKey } from '../helpers/jwt';
import { invoke, loadHandler, type ApiHandler } from '../helpers/lambda';

/**
 * The operator's path end to end: the real admin command (`tsx scripts/grants.ts`, a child process)
 * writes to the table, and the handler (in-process, grants from the table) obeys on the very next
 * request. Grants come from the table only outside STAGE=local (which embeds a demo grants file), and
 * such a stage reads the Tencent keys from Secrets Manager: a loopback server plays it here.
 */
const ACME = 'https://login.acme.example/';
const PARTNER = 'https://id.partner.example/';
const AUDIENCE = 'cloudphone-stream-api';
const FIRST = 'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac';
const SECOND = 'RK8S37P1402445261_95de5774-0f9f-4cc2-aa67-58d41378d209';
const DEVICE = 'dc1079f85676';
const KEYS = { secretId: 'admin-test-secret-id', secretKey: 'admin-test-secret-key-0123456789' };
const SECRET_ARN = 'arn:aws:secretsmanager:ap-east-1:123456789012:secret:cloudphone/tencent-keys-AbCdEf';

let key: TestKey;
let dynamo: TestDynamo;
let emulator: GsEmulator;
let secrets: SecretsManagerStandIn;
let handler: ApiHandler;

/** `node_modules/.bin/tsx scripts/grants.ts ...` as an operator runs it; resolves with its JSON output. */
function grants(...args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [TSX, 'scripts/grants.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH, TABLE_NAME: dynamo.tableName, DYNAMODB_ENDPOINT: dynamo.endpoint } },
      (error, stdout, stderr) => (error ? reject(new Error(`grants ${args[0]} failed: ${stderr}`)) : resolve(JSON.parse(stdout))),
    );
  });
}

async function vend(subject: string, claims: Record<string, unknown> = {}, instanceIds = [FIRST]) {
  const now = Math.floor(Date.now() / 1000);
  const jwt = await signToken(key, { iss: ACME, aud: AUDIENCE, sub: subject, iat: now, exp: now + 600, ...claims });
  return invoke(handler, {
    method: 'POST',
    path: '/v1/stream-tokens',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    body: JSON.stringify({ instanceIds, deviceId: DEVICE }),
  });
}

const outcome = (result: { status: number; body: Record<string, unknown> }) => ({ status: result.status, code: result.body.code });
const OK = { status: 200, code: undefined };
const REVOKED = { status: 403, code: 'access_revoked' };
const NOT_ALLOWED = { status: 403, code: 'instance_not_allowed' };

beforeAll(async () => {
  key = await createEcKey('admin-test');
  dynamo = await startTestDynamo();
  emulator = await startGsEmulator({ credentials: [KEYS], knownInstanceIds: [FIRST, SECOND] });
  secrets = await startSecretsManager({ [SECRET_ARN]: JSON.stringify(KEYS) });
  // Read by the AWS SDK when the first upstream call fetches the keys, after loadHandler has returned.
  Object.assign(process.env, secrets.awsEnv);
  handler = loadHandler({
    STAGE: 'test',
    AUTH_ISSUERS: JSON.stringify([
      { name: 'acme', issuer: ACME, audiences: [AUDIENCE], jwks: jwksOf(key), algorithms: ['ES256'] },
      { name: 'partner', issuer: PARTNER, audiences: [AUDIENCE], jwks: jwksOf(key), algorithms: ['ES256'], instancesClaim: 'phones' },
    ]),
    TABLE_NAME: dynamo.tableName,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    GS_ENDPOINT: emulator.url,
    TENCENTCLOUD_SECRET_ARN: SECRET_ARN,
    TOKEN_REUSE_SECONDS: '0',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
});

afterAll(async () => {
  await Promise.all([emulator?.close(), dynamo?.close(), secrets?.close()]);
});

describe('the admin command takes effect on the very next request (grants from the table)', () => {
  it('grant, revoke-caller, unrevoke-caller and revoke-instances', async () => {
    const denied = await vend('alice');
    expect(outcome(denied)).toEqual(NOT_ALLOWED);
    expect(denied.body.deniedInstanceIds).toEqual([FIRST]);

    await grants('grant', '--issuer', ACME, '--subject', 'alice', FIRST);
    const granted = await vend('alice');
    expect(outcome(granted)).toEqual(OK);
    expect(granted.body.tokens).toEqual([expect.objectContaining({ instanceId: FIRST, deviceId: DEVICE })]);

    await grants('revoke-caller', '--issuer', ACME, '--subject', 'alice', '--reason', 'leaked token');
    expect(outcome(await vend('alice'))).toEqual(REVOKED);

    await grants('unrevoke-caller', '--issuer', ACME, '--subject', 'alice');
    expect(outcome(await vend('alice'))).toEqual(OK);

    await grants('revoke-instances', '--issuer', ACME, '--subject', 'alice', FIRST);
    expect(outcome(await vend('alice'))).toEqual(NOT_ALLOWED);
  });

  it('pool add opens a partner-claimed instance; revoke-issuer refuses every caller of that issuer', async () => {
    const partner = (subject: string) => vend(subject, { iss: PARTNER, phones: [SECOND] }, [SECOND]);
    expect(outcome(await partner('p-user-1'))).toEqual(NOT_ALLOWED);

    await grants('pool', 'add', '--issuer', PARTNER, SECOND);
    expect(outcome(await partner('p-user-1'))).toEqual(OK);

    await grants('revoke-issuer', '--issuer', PARTNER, '--reason', 'contract ended');
    expect([outcome(await partner('p-user-1')), outcome(await partner('p-user-2'))]).toEqual([REVOKED, REVOKED]);
    // Only that issuer: acme's alice gets past the revocation check (to her emptied grant).
    expect(outcome(await vend('alice'))).toEqual(NOT_ALLOWED);
  });
});
