/**
 * Credential providers. Secrets Manager is not mocked: a loopback server speaks its JSON protocol
 * (POST, X-Amz-Target: secretsmanager.GetSecretValue, application/x-amz-json-1.1) to the real SDK client.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { startSecretsManager, type SecretsManagerStandIn } from '../helpers/secrets-manager';
import { CredentialsError, secretsManagerCredentials, staticCredentials } from '../../lib/tencent/credentials';

const SECRET_NAME = 'cloudphone/tencent-keys-AbCdEf';
const SECRET_ARN = `arn:aws:secretsmanager:ap-east-1:123456789012:secret:${SECRET_NAME}`;
const KEYS = { secretId: 'AKIDfirst', secretKey: 'first-secret-key-value' };

let secretsManager: SecretsManagerStandIn;

beforeAll(async () => {
  secretsManager = await startSecretsManager({});
});

afterAll(() => secretsManager.close());

beforeEach(() => {
  Object.assign(secretsManager.state, { secrets: { [SECRET_ARN]: JSON.stringify(KEYS) }, fail: false, delayMs: 0, calls: 0, targets: [] });
});

const smClient = () =>
  new SecretsManagerClient({ endpoint: secretsManager.endpoint, region: 'ap-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('staticCredentials', () => {
  it('returns the given keys', async () => {
    await expect(staticCredentials('id', 'key').getCredential()).resolves.toEqual({ secretId: 'id', secretKey: 'key' });
  });
});

describe('secretsManagerCredentials', () => {
  it('reads {"secretId","secretKey"} with GetSecretValue and caches it for the TTL', async () => {
    const provider = secretsManagerCredentials(SECRET_ARN, { client: smClient() });
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
    expect(secretsManager.state.calls).toBe(1);
    expect(secretsManager.state.targets).toEqual(['secretsmanager.GetSecretValue']);
  });

  it('shares one refresh among concurrent callers', async () => {
    secretsManager.state.delayMs = 50;
    const provider = secretsManagerCredentials(SECRET_ARN, { client: smClient() });
    const results = await Promise.all(Array.from({ length: 5 }, () => provider.getCredential()));
    expect(results).toEqual(Array.from({ length: 5 }, () => KEYS));
    expect(secretsManager.state.calls).toBe(1);
  });

  it('picks up a rotated secret after the TTL, with no redeploy, refreshing in the background', async () => {
    const provider = secretsManagerCredentials(SECRET_ARN, { client: smClient(), ttlMs: 50 });
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
    const rotated = { secretId: 'AKIDsecond', secretKey: 'second-secret-key-value' };
    secretsManager.state.secrets[SECRET_ARN] = JSON.stringify(rotated);
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
    await sleep(70);
    // Expired: served once more while the refresh runs, then the rotated keys.
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
    await sleep(50);
    await expect(provider.getCredential()).resolves.toEqual(rotated);
    expect(secretsManager.state.calls).toBe(2);
  });

  it('never holds a request while Secrets Manager hangs once a value is held, and gives up on a hang with none', async () => {
    // The provider's own client (the SDK sets no timeout of its own), pointed at the stand-in.
    const saved = { ...process.env };
    Object.assign(process.env, secretsManager.awsEnv);
    try {
      const provider = secretsManagerCredentials(SECRET_ARN, { ttlMs: 50 });
      await expect(provider.getCredential()).resolves.toEqual(KEYS);
      secretsManager.state.delayMs = 20_000;
      await sleep(70);
      const startedAt = Date.now();
      await expect(provider.getCredential()).resolves.toEqual(KEYS);
      // Served from the held value: nowhere near the 1.5 s request timeout, let alone the 20 s hang.
      expect(Date.now() - startedAt).toBeLessThan(200);

      const cold = secretsManagerCredentials(SECRET_ARN);
      const coldStartedAt = Date.now();
      await expect(cold.getCredential()).rejects.toThrow(CredentialsError);
      // Two attempts of at most 1.5 s each, not the Lambda's whole timeout.
      expect(Date.now() - coldStartedAt).toBeLessThan(4500);
    } finally {
      process.env = saved;
    }
  }, 15_000);

  it('falls back to the last good value when a refresh fails, logging no secret values, and retries later', async () => {
    const warnings: Array<{ message: string; attributes: Record<string, unknown> }> = [];
    const provider = secretsManagerCredentials(SECRET_ARN, {
      client: smClient(),
      ttlMs: 50,
      logger: { warn: (message, attributes) => warnings.push({ message, attributes }) },
    });
    await provider.getCredential();
    secretsManager.state.fail = true;
    await sleep(70);
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
    await sleep(50);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.attributes.secret).toBe(SECRET_NAME);
    expect(JSON.stringify(warnings)).not.toContain(KEYS.secretKey);

    secretsManager.state.fail = false;
    secretsManager.state.secrets[SECRET_ARN] = JSON.stringify({ secretId: 'AKIDthird', secretKey: 'third-secret-key-value' });
    await sleep(70);
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
    await sleep(50);
    await expect(provider.getCredential()).resolves.toEqual({ secretId: 'AKIDthird', secretKey: 'third-secret-key-value' });
  });

  it('fails with an error naming the secret when there is no good value yet', async () => {
    secretsManager.state.fail = true;
    const error = await secretsManagerCredentials(SECRET_ARN, { client: smClient() }).getCredential().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialsError);
    expect((error as Error).message).toBe(`Cannot read Secrets Manager secret "${SECRET_NAME}"`);
  });

  it('tries again on the next call after a first failure', async () => {
    secretsManager.state.fail = true;
    const provider = secretsManagerCredentials(SECRET_ARN, { client: smClient() });
    await expect(provider.getCredential()).rejects.toThrow(CredentialsError);
    secretsManager.state.fail = false;
    await expect(provider.getCredential()).resolves.toEqual(KEYS);
  });

  it.each([
    ['not JSON', `secretId=${KEYS.secretId}&secretKey=${KEYS.secretKey}`, 'is not JSON'],
    ['missing secretKey', JSON.stringify({ secretId: KEYS.secretId, secretkey: KEYS.secretKey }), 'bad: secretKey'],
    ['an empty secretId', JSON.stringify({ secretId: '', secretKey: KEYS.secretKey }), 'bad: secretId'],
    ['a number for secretKey', JSON.stringify({ secretId: KEYS.secretId, secretKey: 12345 }), 'bad: secretKey'],
  ])('rejects a secret that is %s, naming the secret but no value', async (_label, secretString, expected) => {
    secretsManager.state.secrets[SECRET_ARN] = secretString;
    const error = await secretsManagerCredentials(SECRET_ARN, { client: smClient() }).getCredential().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialsError);
    const text = `${(error as Error).message} ${String((error as Error).cause ?? '')}`;
    expect(text).toContain(SECRET_NAME);
    expect(text).toContain(expected);
    expect(text).not.toContain(KEYS.secretKey);
    expect(text).not.toContain(KEYS.secretId);
    expect(text).not.toContain('12345');
  });
});
