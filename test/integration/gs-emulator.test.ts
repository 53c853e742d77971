/**
 * The gs emulator on its own, driven with hand-signed requests (local/tc3.ts) over loopback HTTP, so cases the
 * SDK never produces (old timestamps, wrong scope, missing parameters, other methods) can be checked.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { request as httpRequest } from 'node:http';
import { startGsEmulator, DEFAULT_COTURN_SERVERS, DEFAULT_SIGNAL_SERVER, type GsEmulator } from '../../local/gs-emulator';
import { signRequest, utcDate } from '../../local/tc3';

const SECRET = { secretId: 'AKIDemulatortest', secretKey: 'emulator-test-key' };
const OTHER_SECRET = { secretId: 'AKIDother', secretKey: 'other-key' };
const SEED_INSTANCES = [
  'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac',
  'RK8S37P1402445261_95de5774-0f9f-4cc2-aa67-58d41378d209',
];
const SEED_DEVICE = 'dc1079f85676';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface RawResponse {
  status: number;
  contentType: string | undefined;
  text: string;
}

function send(emulator: GsEmulator, method: string, path: string, headers: Record<string, string>, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: emulator.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface CallOptions {
  body?: unknown;
  rawBody?: string;
  secret?: { secretId: string; secretKey: string };
  timestamp?: number;
  service?: string;
  date?: string;
  action?: string | null;
  version?: string | null;
  signedHeaders?: string[];
  /** Changes the body after signing. */
  tamper?: (body: string) => string;
}

/** Signs like the SDK does (Host with port on the wire, without it in the signature) and returns the parsed envelope. */
async function call(emulator: GsEmulator, options: CallOptions = {}): Promise<{ status: number; response: Record<string, unknown> }> {
  const body = options.rawBody ?? JSON.stringify(options.body ?? { InstanceIds: SEED_INSTANCES, DeviceId: SEED_DEVICE });
  const secret = options.secret ?? SECRET;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signed = signRequest(
    {
      ...secret,
      service: options.service ?? 'gs',
      timestamp,
      headers: { 'content-type': 'application/json', host: 'gs.tencentcloudapi.com' },
      signedHeaders: options.signedHeaders ?? ['content-type', 'host'],
      body,
    },
    options.date ?? utcDate(timestamp),
  );
  const headers: Record<string, string> = {
    Host: `gs.tencentcloudapi.com:${emulator.port}`,
    'Content-Type': 'application/json',
    Authorization: signed.authorization,
    'X-TC-Timestamp': String(timestamp),
  };
  if (options.action !== null) headers['X-TC-Action'] = options.action ?? 'CreateCloudPhoneInstancesStreamToken';
  if (options.version !== null) headers['X-TC-Version'] = options.version ?? '2019-11-18';
  const res = await send(emulator, 'POST', '/', headers, options.tamper ? options.tamper(body) : body);
  return { status: res.status, response: (JSON.parse(res.text) as { Response: Record<string, unknown> }).Response };
}

const errorCode = (response: Record<string, unknown>) => (response.Error as { Code?: string } | undefined)?.Code;

/** `YYYY-MM-DD HH:MM:SS` read as Beijing time. */
const beijingToMs = (text: string) => Date.parse(`${text.replace(' ', 'T')}+08:00`);

let emulator: GsEmulator;

beforeAll(async () => {
  emulator = await startGsEmulator({
    credentials: [SECRET, OTHER_SECRET],
    knownInstanceIds: [...SEED_INSTANCES, 'RK-known-3'],
    rateLimit: { limit: 5, windowMs: 300 },
  });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => emulator.reset());

describe('success', () => {
  it('answers the seed example in the seed document’s shape, in request order', async () => {
    const before = Date.now();
    const { status, response } = await call(emulator);
    expect(status).toBe(200);
    expect(response.RequestId).toMatch(UUID);
    const tokens = response.Tokens as Array<Record<string, unknown>>;
    expect(tokens.map((t) => t.InstanceId)).toEqual(SEED_INSTANCES);
    for (const [index, token] of tokens.entries()) {
      expect(Object.keys(token).sort()).toEqual(['CoturnServers', 'DeviceId', 'ExpireTime', 'InstanceId', 'SignalServer', 'Token']);
      expect(token.DeviceId).toBe(SEED_DEVICE);
      expect(Buffer.from(token.Token as string, 'base64').toString()).toMatch(new RegExp(`^[0-9a-f]{16}&${SEED_INSTANCES[index]}&${SEED_DEVICE}$`));
      expect(token.SignalServer).toEqual(DEFAULT_SIGNAL_SERVER);
      expect(token.CoturnServers).toEqual(DEFAULT_COTURN_SERVERS);
      expect(token.ExpireTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    }
    expect(tokens[0]?.ExpireTime).toBe(tokens[1]?.ExpireTime);
    // Beijing wall-clock time, default RenewalTime 2 hours.
    const expiresAt = beijingToMs(tokens[0]?.ExpireTime as string);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 2 * 3600_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 2 * 3600_000);
    expect(emulator.calls).toEqual([
      {
        at: expect.any(Number),
        action: 'CreateCloudPhoneInstancesStreamToken',
        secretId: SECRET.secretId,
        instanceIds: SEED_INSTANCES,
        outcome: 'Success',
        response,
      },
    ]);
  });

  it('honours RenewalTime in hours', async () => {
    const { response } = await call(emulator, { body: { InstanceIds: ['RK-known-3'], DeviceId: 'd', RenewalTime: 5 } });
    const [token] = response.Tokens as Array<{ ExpireTime: string }>;
    expect(Math.abs(beijingToMs(token?.ExpireTime ?? '') - (Date.now() + 5 * 3600_000))).toBeLessThan(3000);
  });

  it('accepts a signature made 4 minutes ago and a Host header naming 127.0.0.1', async () => {
    expect((await call(emulator, { timestamp: Math.floor(Date.now() / 1000) - 240 })).response.Tokens).toHaveLength(2);
    const body = JSON.stringify({ InstanceIds: ['RK-known-3'], DeviceId: 'd' });
    const timestamp = Math.floor(Date.now() / 1000);
    const signed = signRequest({
      ...SECRET,
      service: 'gs',
      timestamp,
      headers: { 'content-type': 'application/json', host: '127.0.0.1' },
      signedHeaders: ['content-type', 'host'],
      body,
    });
    const res = await send(
      emulator,
      'POST',
      '/',
      {
        Host: `127.0.0.1:${emulator.port}`,
        'Content-Type': 'application/json',
        Authorization: signed.authorization,
        'X-TC-Timestamp': String(timestamp),
        'X-TC-Action': 'CreateCloudPhoneInstancesStreamToken',
        'X-TC-Version': '2019-11-18',
      },
      body,
    );
    expect(JSON.parse(res.text).Response.Tokens).toHaveLength(1);
  });
});

describe('signature verification (all HTTP 200 with an error envelope)', () => {
  const now = () => Math.floor(Date.now() / 1000);

  it.each<[string, CallOptions, string]>([
    ['a request signed 6 minutes ago', { timestamp: now() - 360 }, 'AuthFailure.SignatureExpire'],
    ['a request signed 6 minutes ahead', { timestamp: now() + 360 }, 'AuthFailure.SignatureExpire'],
    ['the wrong service in the credential scope', { service: 'cvm' }, 'AuthFailure.SignatureFailure'],
    ['a credential date that is not the timestamp’s UTC date', { date: utcDate(now() + 86400) }, 'AuthFailure.SignatureFailure'],
    ['a wrong secret key', { secret: { ...SECRET, secretKey: 'wrong' } }, 'AuthFailure.SignatureFailure'],
    ['an unknown SecretId', { secret: { secretId: 'AKIDunknown', secretKey: 'x' } }, 'AuthFailure.SecretIdNotFound'],
    ['a body changed after signing', { tamper: (body) => body.replace(SEED_DEVICE, 'attacker') }, 'AuthFailure.SignatureFailure'],
    ['SignedHeaders without content-type', { signedHeaders: ['host'] }, 'AuthFailure.InvalidAuthorization'],
  ])('rejects %s', async (_label, options, code) => {
    const { status, response } = await call(emulator, options);
    expect(status).toBe(200);
    expect(errorCode(response)).toBe(code);
    expect(response.RequestId).toMatch(UUID);
    expect(response.Tokens).toBeUndefined();
  });

  it('rejects a request with no Authorization header', async () => {
    const res = await send(emulator, 'POST', '/', { 'Content-Type': 'application/json', 'X-TC-Timestamp': String(now()) }, '{}');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).Response.Error.Code).toBe('AuthFailure.InvalidAuthorization');
  });
});

describe('action and version', () => {
  it.each<[string, string, CallOptions]>([
    ['another action', 'InvalidAction', { action: 'DescribeInstances' }],
    ['another version', 'InvalidAction', { version: '2020-01-01' }],
    ['no action', 'MissingParameter', { action: null }],
    ['no version', 'MissingParameter', { version: null }],
  ])('answers %s with %s', async (_label, code, options) => {
    expect(errorCode((await call(emulator, options)).response)).toBe(code);
  });
});

describe('parameters', () => {
  it.each<[string, string, unknown]>([
    ['missing InstanceIds', 'MissingParameter', { DeviceId: 'd' }],
    ['missing DeviceId', 'MissingParameter', { InstanceIds: ['RK-known-3'] }],
    ['InstanceIds as a string', 'InvalidParameter', { InstanceIds: 'RK-known-3', DeviceId: 'd' }],
    ['InstanceIds with a number', 'InvalidParameter', { InstanceIds: [1], DeviceId: 'd' }],
    ['DeviceId as a number', 'InvalidParameter', { InstanceIds: ['RK-known-3'], DeviceId: 7 }],
    ['RenewalTime 0', 'InvalidParameter', { InstanceIds: ['RK-known-3'], DeviceId: 'd', RenewalTime: 0 }],
    ['RenewalTime 1.5', 'InvalidParameter', { InstanceIds: ['RK-known-3'], DeviceId: 'd', RenewalTime: 1.5 }],
    ['RenewalTime as a string', 'InvalidParameter', { InstanceIds: ['RK-known-3'], DeviceId: 'd', RenewalTime: '2' }],
    ['a body that is an array', 'InvalidParameter', []],
    ['an unknown parameter', 'UnknownParameter', { InstanceIds: ['RK-known-3'], DeviceId: 'd', Foo: 1 }],
    ['empty InstanceIds', 'InvalidParameterValue', { InstanceIds: [], DeviceId: 'd' }],
    ['an unknown instance', 'InvalidParameterValue', { InstanceIds: ['RK-known-3', 'RK-unknown'], DeviceId: 'd' }],
  ])('answers %s with %s', async (_label, code, body) => {
    expect(errorCode((await call(emulator, { body })).response)).toBe(code);
  });

  it('answers a body that is not JSON with InvalidParameter', async () => {
    expect(errorCode((await call(emulator, { rawBody: '{not json' })).response)).toBe('InvalidParameter');
  });

  it('knows every plausible instance id when knownInstanceIds is omitted', async () => {
    const open = await startGsEmulator({ credentials: [SECRET] });
    try {
      const ok = await call(open, { body: { InstanceIds: ['anything_goes-1.2:3'], DeviceId: 'd' } });
      expect(ok.response.Tokens).toHaveLength(1);
      const bad = await call(open, { body: { InstanceIds: ['spaces are not plausible'], DeviceId: 'd' } });
      expect(errorCode(bad.response)).toBe('InvalidParameterValue');
    } finally {
      await open.close();
    }
  });
});

describe('HTTP surface', () => {
  it('answers GET like the real endpoint answers an unsupported request: HTTP 200, error envelope', async () => {
    const res = await send(emulator, 'GET', '/', {});
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('application/json');
    const response = JSON.parse(res.text).Response;
    expect(response.Error.Code).toBe('UnsupportedOperation');
    expect(response.RequestId).toMatch(UUID);
  });

  it('answers another path with a bare 404', async () => {
    expect((await send(emulator, 'POST', '/v2/index.php', {}, '{}')).status).toBe(404);
  });
});

describe('rate limit', () => {
  it('answers RequestLimitExceeded above the limit, per SecretId, and recovers after the window', async () => {
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < 6; i++) codes.push(errorCode((await call(emulator)).response));
    expect(codes).toEqual([undefined, undefined, undefined, undefined, undefined, 'RequestLimitExceeded']);
    expect((await call(emulator, { secret: OTHER_SECRET })).response.Tokens).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await call(emulator)).response.Tokens).toHaveLength(2);
  });

  it('defaults to the documented 20 requests per second', async () => {
    const defaults = await startGsEmulator({ credentials: [SECRET] });
    try {
      const results = await Promise.all(Array.from({ length: 21 }, () => call(defaults)));
      expect(results.filter((r) => errorCode(r.response) === 'RequestLimitExceeded')).toHaveLength(1);
    } finally {
      await defaults.close();
    }
  });
});

describe('faults', () => {
  it('error: answers the given code for the next `times` calls only', async () => {
    emulator.setFault({ kind: 'error', code: 'InternalError', times: 2 });
    expect(errorCode((await call(emulator)).response)).toBe('InternalError');
    expect(errorCode((await call(emulator)).response)).toBe('InternalError');
    expect((await call(emulator)).response.Tokens).toHaveLength(2);
    expect(emulator.calls.map((c) => c.outcome)).toEqual(['InternalError', 'InternalError', 'Success']);
  });

  it('http: answers a gateway status with an HTML body', async () => {
    emulator.setFault({ kind: 'http', status: 502 });
    const res = await send(emulator, 'POST', '/', { 'Content-Type': 'application/json' }, '{}');
    expect(res.status).toBe(502);
    expect(res.contentType).toBe('text/html');
    expect(res.text).toContain('<html>');
  });

  it('non-json: answers HTTP 200 with text', async () => {
    emulator.setFault({ kind: 'non-json' });
    const res = await send(emulator, 'POST', '/', { 'Content-Type': 'application/json' }, '{}');
    expect(res.status).toBe(200);
    expect(() => JSON.parse(res.text)).toThrow();
  });

  it('delay: answers normally after the delay', async () => {
    emulator.setFault({ kind: 'delay', ms: 150 });
    const started = Date.now();
    expect((await call(emulator)).response.Tokens).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('omit: succeeds without the omitted instances', async () => {
    emulator.setFault({ kind: 'omit', instanceIds: [SEED_INSTANCES[0] ?? ''] });
    const tokens = (await call(emulator)).response.Tokens as Array<{ InstanceId: string }>;
    expect(tokens.map((t) => t.InstanceId)).toEqual([SEED_INSTANCES[1]]);
  });

  it('extra-fields: adds fields to each token and to the response', async () => {
    emulator.setFault({ kind: 'extra-fields' });
    const { response } = await call(emulator);
    expect(Object.keys(response).length).toBeGreaterThan(2);
    for (const token of response.Tokens as object[]) expect(Object.keys(token).length).toBeGreaterThan(6);
  });

  it('hang: never answers, and close() still ends promptly without leaving the socket open', async () => {
    const hanging = await startGsEmulator({ credentials: [SECRET] });
    hanging.setFault({ kind: 'hang' });
    const pending = call(hanging);
    const settled = pending.then(
      () => 'answered',
      () => 'socket closed',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(hanging.calls.map((c) => c.outcome)).toEqual(['hang']);
    const started = Date.now();
    await hanging.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect(await settled).toBe('socket closed');
  });
});
