/**
 * The real stream-token client (CommonClient inside) against the real gs emulator over loopback HTTP, with
 * GS_ENDPOINT = http://127.0.0.1:<port>: every signature here is made by the SDK and verified by the emulator.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { startGsEmulator, type GsEmulator, type GsFault } from '../../local/gs-emulator';
import type { TencentConfig } from '../../lib/config';
import { ServiceError, UpstreamBusyError, UpstreamError, UpstreamTimeoutError, InternalError } from '../../lib/errors';
import { staticCredentials, type CredentialProvider } from '../../lib/tencent/credentials';
import { createStreamTokenClient, UpstreamCallError, type StreamTokenClientOptions } from '../../lib/tencent/stream-token-client';
import type { StreamTokenRequest } from '../../lib/tencent/types';

const SECRET = { secretId: 'AKIDclienttest', secretKey: 'client-test-key' };
const SEED_INSTANCES = [
  'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac',
  'RK8S37P1402445261_95de5774-0f9f-4cc2-aa67-58d41378d209',
];
const SEED_REQUEST: StreamTokenRequest = { instanceIds: SEED_INSTANCES, deviceId: 'dc1079f85676', renewalHours: 2 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN_FIELDS = ['CoturnServers', 'DeviceId', 'ExpireTime', 'InstanceId', 'SignalServer', 'Token'];

let emulator: GsEmulator;

function clientFor(
  target: { url: string },
  { timeoutMs = 3000, credentials = staticCredentials(SECRET.secretId, SECRET.secretKey), ...rest }: Partial<StreamTokenClientOptions> & { timeoutMs?: number } = {},
) {
  const config: TencentConfig = { endpoint: new URL(target.url), region: undefined, timeoutMs, credentials: { ...SECRET } };
  return createStreamTokenClient(config, { credentials, ...rest });
}

/** Runs a call that must fail and returns the error, its upstream cause and how long it took. */
async function failure(promise: Promise<unknown>) {
  const started = Date.now();
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ServiceError);
  const cause = (error as Error).cause;
  return { error: error as ServiceError, cause: cause as UpstreamCallError, ms: Date.now() - started };
}

const beijingToMs = (text: string) => Date.parse(`${text.replace(' ', 'T')}+08:00`);

beforeAll(async () => {
  emulator = await startGsEmulator({ credentials: [SECRET], knownInstanceIds: [...SEED_INSTANCES, 'RK-third'] });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => emulator.reset());

describe('success', () => {
  it('returns the seed example’s two tokens in request order, signed by the SDK and verified by the emulator', async () => {
    const client = clientFor(emulator);
    const before = Date.now();
    const result = await client.createStreamTokens(SEED_REQUEST);

    expect(result.attempts).toBe(1);
    expect(result.requestId).toMatch(UUID);
    expect(result.tokens.map((t) => t.InstanceId)).toEqual(SEED_INSTANCES);
    for (const token of result.tokens) {
      expect(Object.keys(token).sort()).toEqual(TOKEN_FIELDS);
      expect(token.DeviceId).toBe('dc1079f85676');
      expect(token.ExpireTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      const expiresAt = beijingToMs(token.ExpireTime);
      expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 2 * 3600_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 2 * 3600_000);
      expect(token.SignalServer.WSSAddr).toBe('wss://pstreama-pass-hzc.phone.tcloud.com:44913/nats');
      expect(token.CoturnServers).toHaveLength(3);
    }
    expect(emulator.calls).toEqual([
      expect.objectContaining({ action: 'CreateCloudPhoneInstancesStreamToken', secretId: SECRET.secretId, instanceIds: SEED_INSTANCES, outcome: 'Success' }),
    ]);
  });

  it('sends renewalHours as RenewalTime', async () => {
    const result = await clientFor(emulator).createStreamTokens({ ...SEED_REQUEST, renewalHours: 7 });
    expect(Math.abs(beijingToMs(result.tokens[0]?.ExpireTime ?? '') - (Date.now() + 7 * 3600_000))).toBeLessThan(3000);
  });

  it('reuses one client for many calls, and ignores http_proxy (it always passes its own agent)', async () => {
    const client = clientFor(emulator);
    const saved = process.env.http_proxy;
    process.env.http_proxy = 'http://127.0.0.1:9';
    try {
      const results = await Promise.all([client.createStreamTokens(SEED_REQUEST), client.createStreamTokens(SEED_REQUEST)]);
      expect(results.map((r) => r.tokens.length)).toEqual([2, 2]);
    } finally {
      if (saved === undefined) delete process.env.http_proxy;
      else process.env.http_proxy = saved;
    }
  });

  it('drops fields the documented shape does not have (extra-fields)', async () => {
    emulator.setFault({ kind: 'extra-fields' });
    const result = await clientFor(emulator).createStreamTokens(SEED_REQUEST);
    expect(Object.keys(result).sort()).toEqual(['attempts', 'requestId', 'tokens']);
    for (const token of result.tokens) expect(Object.keys(token).sort()).toEqual(TOKEN_FIELDS);
    expect(JSON.stringify(result)).not.toMatch(/StreamRegion|Debug|ExtraInfo/);
  });

  it('returns what the upstream issued when it omits an instance (the caller reports the gap)', async () => {
    emulator.setFault({ kind: 'omit', instanceIds: [SEED_INSTANCES[0] ?? ''] });
    const result = await clientFor(emulator).createStreamTokens(SEED_REQUEST);
    expect(result.tokens.map((t) => t.InstanceId)).toEqual([SEED_INSTANCES[1]]);
  });

  it('waits out a delay that fits in the budget', async () => {
    emulator.setFault({ kind: 'delay', ms: 150 });
    expect((await clientFor(emulator).createStreamTokens(SEED_REQUEST)).attempts).toBe(1);
  });
});

describe('refusals → UpstreamError 502, never retried', () => {
  it.each<[string, { credentials?: CredentialProvider; request?: StreamTokenRequest; fault?: GsFault }, string]>([
    ['a wrong secret key', { credentials: staticCredentials(SECRET.secretId, 'wrong-key') }, 'AuthFailure.SignatureFailure'],
    ['an unknown SecretId', { credentials: staticCredentials('AKIDunknown', SECRET.secretKey) }, 'AuthFailure.SecretIdNotFound'],
    ['an unknown instance', { request: { ...SEED_REQUEST, instanceIds: ['RK-not-ours'] } }, 'InvalidParameterValue'],
    ['FailedOperation', { fault: { kind: 'error', code: 'FailedOperation' } }, 'FailedOperation'],
    ['LimitExceeded (a quota, not a rate)', { fault: { kind: 'error', code: 'LimitExceeded' } }, 'LimitExceeded'],
    ['UnauthorizedOperation', { fault: { kind: 'error', code: 'UnauthorizedOperation' } }, 'UnauthorizedOperation'],
    ['ResourceNotFound', { fault: { kind: 'error', code: 'ResourceNotFound' } }, 'ResourceNotFound'],
  ])('%s', async (_label, { credentials, request = SEED_REQUEST, fault }, code) => {
    emulator.setFault(fault);
    const { error, cause } = await failure(clientFor(emulator, credentials ? { credentials } : {}).createStreamTokens(request));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.status).toBe(502);
    expect(cause).toBeInstanceOf(UpstreamCallError);
    expect(cause.failure).toMatchObject({ kind: 'refused', source: 'api-error', code, requestId: expect.stringMatching(UUID) });
    expect(cause.attempts).toBe(1);
    expect(emulator.calls).toHaveLength(1);
  });

  it('keeps everything from the upstream out of the error’s message and serialisation', async () => {
    const { error, cause } = await failure(
      clientFor(emulator, { credentials: staticCredentials(SECRET.secretId, 'wrong-key') }).createStreamTokens(SEED_REQUEST),
    );
    const requestId = cause.failure.requestId ?? '';
    expect(requestId).toMatch(UUID);
    expect(error.message).toBe('The cloud phone service refused or answered malformed');
    expect(error.message).not.toContain('AuthFailure');
    expect(JSON.stringify(error)).not.toContain(requestId);
    expect(Object.keys(error)).not.toContain('cause');
    expect(cause.failure.upstreamMessage).toContain('credentials could not be validated');
  });

  it('a client clock 6 minutes slow: AuthFailure.SignatureExpire from the emulator → 502, no retry', async () => {
    // The SDK stamps X-TC-Timestamp with `new Date().getTime()`; the emulator and the budget use Date.now().
    const realGetTime = Date.prototype.getTime;
    const spy = jest.spyOn(Date.prototype, 'getTime').mockImplementation(function (this: Date) {
      return realGetTime.call(this) - 6 * 60_000;
    });
    try {
      const { error, cause } = await failure(clientFor(emulator).createStreamTokens(SEED_REQUEST));
      expect(error).toBeInstanceOf(UpstreamError);
      expect(cause.failure.code).toBe('AuthFailure.SignatureExpire');
      expect(cause.attempts).toBe(1);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('malformed answers → UpstreamError 502, never retried', () => {
  it.each<[string, GsFault]>([
    ['HTTP 200 with a text body', { kind: 'non-json' }],
    ['HTTP 200 JSON without the envelope', { kind: 'http', status: 200, body: '{"hello":"world"}' }],
    ['HTTP 200 envelope without Tokens', { kind: 'http', status: 200, body: '{"Response":{"RequestId":"r-1"}}' }],
    [
      'HTTP 200 with a token of the wrong shape',
      { kind: 'http', status: 200, body: '{"Response":{"RequestId":"r-2","Tokens":[{"InstanceId":"i","Token":"t"}]}}' },
    ],
  ])('%s', async (_label, fault) => {
    emulator.setFault(fault);
    const { error, cause } = await failure(clientFor(emulator).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(cause.failure.kind).toBe('malformed');
    expect(cause.attempts).toBe(1);
    expect(emulator.calls).toHaveLength(1);
  });

  it('keeps no part of a non-JSON body in the logged failure (a JSON parse message quotes the text)', async () => {
    emulator.setFault({ kind: 'http', status: 200, body: '<html>SECRET-LOOKING-BODY</html>' });
    const { cause } = await failure(clientFor(emulator).createStreamTokens(SEED_REQUEST));
    expect(cause.failure).toMatchObject({ kind: 'malformed', upstreamMessage: 'FetchError invalid-json' });
    expect(JSON.stringify(cause.failure) + cause.message).not.toContain('SECRET-LOOKING');
  });

  it('never puts token values into the logged shape problem', async () => {
    emulator.setFault({ kind: 'http', status: 200, body: '{"Response":{"RequestId":"r-3","Tokens":[{"Token":"SECRET-TOKEN-VALUE"}]}}' });
    const { cause } = await failure(clientFor(emulator).createStreamTokens(SEED_REQUEST));
    expect(cause.failure.requestId).toBe('r-3');
    expect(JSON.stringify(cause.failure) + cause.message).not.toContain('SECRET-TOKEN-VALUE');
  });
});

describe('HTTP statuses other than 200', () => {
  it('retries a 5xx like a network failure and succeeds', async () => {
    emulator.setFault({ kind: 'http', status: 503, times: 1 });
    expect((await clientFor(emulator).createStreamTokens(SEED_REQUEST)).attempts).toBe(2);
  });

  it('gives up on a persistent 502 after 2 retries → UpstreamError 502', async () => {
    emulator.setFault({ kind: 'http', status: 502 });
    const { error, cause } = await failure(clientFor(emulator).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(cause.failure).toMatchObject({ kind: 'transient', source: 'http-status', httpCode: 502 });
    expect(emulator.calls).toHaveLength(3);
  });

  it('does not retry a 4xx → UpstreamError 502', async () => {
    emulator.setFault({ kind: 'http', status: 403 });
    const { error, cause } = await failure(clientFor(emulator).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(cause.failure).toMatchObject({ kind: 'refused', httpCode: 403 });
    expect(emulator.calls).toHaveLength(1);
  });
});

describe('retries', () => {
  it('RequestLimitExceeded twice, then success → attempts 3', async () => {
    const warnings: Array<Record<string, unknown>> = [];
    emulator.setFault({ kind: 'error', code: 'RequestLimitExceeded', times: 2 });
    const client = clientFor(emulator, { random: () => 1, logger: { warn: (_message, attributes) => warnings.push(attributes) } });
    const result = await client.createStreamTokens(SEED_REQUEST);
    expect(result.attempts).toBe(3);
    expect(result.tokens).toHaveLength(2);
    expect(warnings.map((w) => w.code)).toEqual(['RequestLimitExceeded', 'RequestLimitExceeded']);
    // Exponential steps of 100 ms; random() = 1 takes the top of each equal-jitter range.
    expect(warnings.map((w) => w.delayMs)).toEqual([100, 200]);
    expect(JSON.stringify(warnings)).not.toContain(SECRET.secretKey);
  });

  it.each(['RequestLimitExceeded', 'RequestLimitExceeded.UinLimitExceeded'])('persistent %s → UpstreamBusyError 503, Retry-After 1', async (code) => {
    emulator.setFault({ kind: 'error', code });
    const { error, cause } = await failure(clientFor(emulator, { sleep: async () => {} }).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamBusyError);
    expect(error.status).toBe(503);
    expect(error.headers()).toEqual({ 'Retry-After': '1' });
    expect(cause.attempts).toBe(5);
    expect(emulator.calls).toHaveLength(5);
  });

  it('stops retrying RequestLimitExceeded when the budget is spent → 503 within the budget', async () => {
    emulator.setFault({ kind: 'error', code: 'RequestLimitExceeded' });
    const { error, ms } = await failure(clientFor(emulator, { timeoutMs: 300 }).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamBusyError);
    expect(ms).toBeLessThan(350);
  });

  it('backs off against the emulator’s own rate limit and gets through', async () => {
    const limited = await startGsEmulator({ credentials: [SECRET], rateLimit: { limit: 2, windowMs: 300 } });
    try {
      const client = clientFor(limited);
      const results = await Promise.all([1, 2, 3].map(() => client.createStreamTokens(SEED_REQUEST)));
      expect(results.every((r) => r.tokens.length === 2)).toBe(true);
      expect(results.reduce((sum, r) => sum + r.attempts, 0)).toBeGreaterThan(3);
      expect(limited.calls.map((c) => c.outcome)).toContain('RequestLimitExceeded');
    } finally {
      await limited.close();
    }
  });

  it.each(['InternalError', 'ServiceUnavailable'])('%s once, then success → attempts 2', async (code) => {
    emulator.setFault({ kind: 'error', code, times: 1 });
    expect((await clientFor(emulator).createStreamTokens(SEED_REQUEST)).attempts).toBe(2);
  });

  it('persistent InternalError → at most 2 retries, then UpstreamError 502', async () => {
    emulator.setFault({ kind: 'error', code: 'InternalError' });
    const { error, cause } = await failure(clientFor(emulator).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(cause.failure).toMatchObject({ kind: 'transient', code: 'InternalError' });
    expect(emulator.calls).toHaveLength(3);
  });

  it('connection refused → retried, then UpstreamError 502', async () => {
    const gone = await startGsEmulator({ credentials: [SECRET] });
    const url = gone.url;
    await gone.close();
    const { error, cause } = await failure(clientFor({ url }).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(cause.failure).toMatchObject({ kind: 'transient', source: 'network' });
    expect(cause.attempts).toBe(3);
  });
});

describe('the time budget (UPSTREAM_TIMEOUT_MS, retries included)', () => {
  it('a hanging upstream with timeoutMs 300 → UpstreamTimeoutError 504 in about 300 ms, not the SDK’s 60 s', async () => {
    emulator.setFault({ kind: 'hang' });
    const { error, cause, ms } = await failure(clientFor(emulator, { timeoutMs: 300 }).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamTimeoutError);
    expect(error.status).toBe(504);
    expect(cause.failure.kind).toBe('timeout');
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(500);
    expect(emulator.calls).toHaveLength(1);
  });

  it('a delay longer than the budget → 504', async () => {
    emulator.setFault({ kind: 'delay', ms: 1000 });
    const { error, ms } = await failure(clientFor(emulator, { timeoutMs: 300 }).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamTimeoutError);
    expect(ms).toBeLessThan(500);
  });

  it('the budget covers retries: InternalError then a hang → 504 at the budget', async () => {
    emulator.setFault({ kind: 'error', code: 'InternalError', times: 1 });
    const client = clientFor(emulator, {
      timeoutMs: 400,
      sleep: async (ms) => {
        emulator.setFault({ kind: 'hang' });
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
    });
    const { error, cause, ms } = await failure(client.createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(UpstreamTimeoutError);
    expect(cause.attempts).toBe(2);
    expect(ms).toBeLessThan(600);
  });
});

describe('credentials', () => {
  it('a provider that fails → InternalError 500 and nothing sent upstream', async () => {
    const broken: CredentialProvider = { getCredential: () => Promise.reject(new Error('no secret')) };
    const { error } = await failure(clientFor(emulator, { credentials: broken }).createStreamTokens(SEED_REQUEST));
    expect(error).toBeInstanceOf(InternalError);
    expect(emulator.calls).toHaveLength(0);
  });
});
