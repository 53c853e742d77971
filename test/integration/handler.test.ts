import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DynamoRevocationStore } from '../../lib/revocations';
import { startGsEmulator, type GsEmulator } from '../../local/gs-emulator';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';
import {
  createEcKey,
  createRsaKey,
  hs256Token,
  jwksOf,
  publicKeySecrets,
  signToken,
  startJwksServer,
  unsecuredToken,
  type JwksServer,
  type TestKey,
} from '../helpers/jwt';
import { invoke, loadHandler, type ApiHandler, type ApiRequest, type InvokeResult } from '../helpers/lambda';

/**
 * The Lambda handler end to end in-process, against the real gs emulator over HTTP (verifying TC3
 * signatures) and a real JWKS server with RS256 and ES256 keys. One test per row of the contract's
 * error table, each checking status, code and the problem+json body.
 */
const ACME = 'https://login.acme.example/';
const PARTNER = 'https://id.partner.example/';
const BROKEN = 'https://idp.broken.example/';
const AUDIENCE = 'cloudphone-stream-api';
const FIRST = 'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac';
const SECOND = 'RK8S37P1402445261_95de5774-0f9f-4cc2-aa67-58d41378d209';
const NOT_MINE = 'RK8S37P1402445261_00000000-0000-0000-0000-000000000000';
const DEVICE = 'dc1079f85676';
const SECRET_ID = 'handler-test-secret-id';
const SECRET_KEY = 'handler-test-secret-key-0123456789';
const ORIGIN = 'https://app.example.com';

let emulator: GsEmulator;
let jwks: JwksServer;
let rsa: TestKey;
let ec: TestKey;
let handler: ApiHandler;
let dynamo: TestDynamo;
let handlerGrantsFile: string;

const issuedJwts: string[] = [];

async function jwt(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: TestKey = rsa): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = await signToken(
    key,
    { iss: ACME, aud: AUDIENCE, sub: 'alice', scope: 'cloudphone:stream', iat: now, exp: now + 600, ...claims },
    { kid: key.kid, ...header },
  );
  issuedJwts.push(token);
  return token;
}

const vend = (token: string | undefined, body: unknown, headers: Record<string, string> = {}): ApiRequest => ({
  method: 'POST',
  path: '/v1/stream-tokens',
  headers: {
    'content-type': 'application/json',
    ...(token !== undefined && { authorization: `Bearer ${token}` }),
    ...headers,
  },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

function expectProblem(result: InvokeResult, status: number, code: string): void {
  expect(result.status).toBe(status);
  expect(result.headers['content-type']).toBe('application/problem+json');
  expect(result.body).toMatchObject({ status, code, type: `urn:cloudphone-stream-tokens:problem:${code}` });
  expect(typeof result.body.title).toBe('string');
  expect(typeof result.body.detail).toBe('string');
  expect(result.body.requestId).toBe(result.headers['x-request-id']);
  expect(result.headers['cache-control']).toBe('no-store');
  expect(result.headers['x-content-type-options']).toBe('nosniff');
  const text = JSON.stringify(result.body);
  expect(text).not.toMatch(/stack|at .*\.ts:\d+|RequestId|handler-test-secret/);
}

beforeAll(async () => {
  [rsa, ec] = await Promise.all([createRsaKey('acme-rsa'), createEcKey('acme-ec')]);
  jwks = await startJwksServer(jwksOf(rsa, ec));
  emulator = await startGsEmulator({
    credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
    knownInstanceIds: [FIRST, SECOND, NOT_MINE],
  });
  dynamo = await startTestDynamo();
  const dir = mkdtempSync(join(tmpdir(), 'handler-test-'));
  const grantsFile = join(dir, 'grants.json');
  handlerGrantsFile = grantsFile;
  writeFileSync(
    grantsFile,
    JSON.stringify({
      grants: [{ issuer: ACME, subject: 'alice', instanceIds: [SECOND, FIRST] }],
      pools: [{ issuer: PARTNER, instanceIds: [FIRST] }],
    }),
  );
  handler = loadHandler({
    STAGE: 'local',
    AUTH_ISSUERS: JSON.stringify([
      {
        name: 'acme',
        issuer: ACME,
        audiences: [AUDIENCE],
        jwksUri: jwks.jwksUri,
        algorithms: ['RS256', 'ES256'],
        requiredScopes: ['cloudphone:stream'],
        deviceClaim: 'device_id',
        rateLimit: { perCaller: '100/60s' },
      },
      {
        name: 'partner',
        issuer: PARTNER,
        audiences: [AUDIENCE],
        jwks: jwksOf(ec),
        algorithms: ['ES256'],
        instancesClaim: 'phones',
        rateLimit: { perCaller: '2/60s' },
      },
      { name: 'broken', issuer: BROKEN, audiences: [AUDIENCE], jwksUri: 'http://127.0.0.1:9/jwks.json', algorithms: ['RS256'] },
    ]),
    ENTITLEMENTS_FILE: grantsFile,
    TABLE_NAME: dynamo.tableName,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    GS_ENDPOINT: emulator.url,
    TENCENTCLOUD_SECRET_ID: SECRET_ID,
    TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
    UPSTREAM_TIMEOUT_MS: '600',
    // Each test injects its own upstream fault; reuse is covered on its own below.
    TOKEN_REUSE_SECONDS: '0',
    MAX_INSTANCES_PER_REQUEST: '3',
    CORS_ALLOWED_ORIGINS: ORIGIN,
    // What is logged is the log-hygiene test's subject; here it would only bury the test output.
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
});

afterAll(async () => {
  await Promise.all([emulator?.close(), jwks?.close(), dynamo?.close()]);
});

beforeEach(() => emulator.reset());

describe('POST /v1/stream-tokens', () => {
  it('vends the seed example: two tokens in request order with expiresAt converted from Beijing time', async () => {
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST, SECOND], deviceId: DEVICE }));
    expect(result.status).toBe(200);
    expect(result.headers['content-type']).toBe('application/json');
    expect(result.headers['cache-control']).toBe('no-store');
    expect(result.headers['x-content-type-options']).toBe('nosniff');
    expect(result.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.headers['strict-transport-security']).toContain('max-age=');
    expect(result.headers['reporting-endpoints']).toBeUndefined();

    const body = result.body as { serverTime: string; tokens: Array<Record<string, unknown>> };
    expect(Object.keys(body).sort()).toEqual(['serverTime', 'tokens']);
    expect(body.tokens.map((token) => token.instanceId)).toEqual([FIRST, SECOND]);
    for (const token of body.tokens) {
      expect(Object.keys(token).sort()).toEqual(['deviceId', 'expiresAt', 'expiresIn', 'instanceId', 'signalServer', 'token', 'turnServers']);
      expect(token.deviceId).toBe(DEVICE);
      expect(Buffer.from(String(token.token), 'base64').toString()).toMatch(new RegExp(`^[0-9a-f]{16}&${token.instanceId}&${DEVICE}$`));
      expect(token.expiresIn).toBeGreaterThan(7200 - 5);
      expect(token.expiresIn).toBeLessThanOrEqual(7200);
    }

    expect(emulator.calls).toHaveLength(1);
    expect(emulator.calls[0]).toMatchObject({ outcome: 'Success', instanceIds: [FIRST, SECOND], secretId: SECRET_ID });
    // The emulator's ExpireTime is Beijing wall-clock time: eight hours ahead of the UTC expiresAt.
    const expireTime = emulator.calls[0]!.response?.Tokens?.[0]?.ExpireTime as string;
    expect(expireTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const asUtc = new Date(Date.parse(expireTime.replace(' ', 'T') + 'Z') - 8 * 3600_000).toISOString().replace('.000Z', 'Z');
    expect(body.tokens[0]?.expiresAt).toBe(asUtc);
  });

  it('sends renewalHours upstream as RenewalTime', async () => {
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST], deviceId: DEVICE, renewalHours: 5 }));
    expect(result.status).toBe(200);
    expect((result.body.tokens as Array<{ expiresIn: number }>)[0]?.expiresIn).toBeGreaterThan(5 * 3600 - 5);
  });

  it('requests every instance the caller may use when instanceIds is omitted, sorted', async () => {
    const result = await invoke(handler, vend(await jwt(), { deviceId: DEVICE }));
    expect(result.status).toBe(200);
    expect(emulator.calls[0]?.instanceIds).toEqual([FIRST, SECOND]);
  });

  it('takes the device from the token claim when the body omits it', async () => {
    const result = await invoke(handler, vend(await jwt({ device_id: 'device-from-claim' }), { instanceIds: [FIRST] }));
    expect(result.status).toBe(200);
    expect((result.body.tokens as Array<{ deviceId: string }>)[0]?.deviceId).toBe('device-from-claim');
  });

  it('lets a partner token reach pooled instances through its claim', async () => {
    const token = await jwt({ iss: PARTNER, sub: 'partner-pooled', phones: [FIRST] }, {}, ec);
    const result = await invoke(handler, vend(token, { instanceIds: [FIRST], deviceId: DEVICE }));
    expect(result.status).toBe(200);
  });

  it('reports an instance the upstream skipped under failures', async () => {
    emulator.setFault({ kind: 'omit', instanceIds: [SECOND] });
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST, SECOND], deviceId: DEVICE }));
    expect(result.status).toBe(200);
    expect(result.body.failures).toEqual([{ instanceId: SECOND, code: 'not_issued' }]);
  });

  it('returns only allow-listed fields when the upstream adds unknown ones', async () => {
    emulator.setFault({ kind: 'extra-fields' });
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST], deviceId: DEVICE }));
    expect(result.status).toBe(200);
    // The emulator adds StreamRegion and Debug to each token and ExtraInfo to the reply.
    expect(Object.keys(result.body).sort()).toEqual(['serverTime', 'tokens']);
    const [token] = result.body.tokens as Array<Record<string, unknown>>;
    expect(Object.keys(token!).sort()).toEqual(['deviceId', 'expiresAt', 'expiresIn', 'instanceId', 'signalServer', 'token', 'turnServers']);
    expect(JSON.stringify(result.body)).not.toMatch(/ExtraInfo|StreamRegion|Debug|emu-1|RequestId/);
  });
});

describe('fewer upstream calls', () => {
  it('reuses a token issued seconds ago for the same caller, instance and device, expiry unchanged', async () => {
    const reusing = loadHandler({
      STAGE: 'local',
      AUTH_ISSUERS: JSON.stringify([{ name: 'acme', issuer: ACME, audiences: [AUDIENCE], jwksUri: jwks.jwksUri, algorithms: ['RS256'] }]),
      ENTITLEMENTS_FILE: handlerGrantsFile,
      TABLE_NAME: dynamo.tableName,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      GS_ENDPOINT: emulator.url,
      TENCENTCLOUD_SECRET_ID: SECRET_ID,
      TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    });
    const token = await jwt({ sub: 'alice' });
    const first = await invoke(reusing, vend(token, { instanceIds: [FIRST], deviceId: DEVICE }));
    const again = await invoke(reusing, vend(token, { instanceIds: [FIRST, SECOND], deviceId: DEVICE }));
    expect([first.status, again.status]).toEqual([200, 200]);
    const [firstToken] = first.body.tokens as Array<{ token: string; expiresAt: string }>;
    const [reused, fresh] = again.body.tokens as Array<{ instanceId: string; token: string; expiresAt: string }>;
    expect(reused).toMatchObject({ token: firstToken!.token, expiresAt: firstToken!.expiresAt });
    expect(fresh?.instanceId).toBe(SECOND);
    expect(emulator.calls.map((call) => call.instanceIds)).toEqual([[FIRST], [SECOND]]);
  });
});

describe('GET /v1/instances and /healthz', () => {
  it('lists the instances the caller may use, sorted', async () => {
    const result = await invoke(handler, { method: 'GET', path: '/v1/instances', headers: { authorization: `Bearer ${await jwt()}` } });
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ instanceIds: [FIRST, SECOND] });
    expect(emulator.calls).toHaveLength(0);
  });

  it('answers health without authentication, upstream call or configuration details', async () => {
    const result = await invoke(handler, { method: 'GET', path: '/healthz' });
    expect(result).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(result.headers['cache-control']).toBe('no-store');
    expect(emulator.calls).toHaveLength(0);
  });
});

describe('the contract error table', () => {
  it.each([
    ['a body that is not a JSON object', '[1,2]'],
    ['malformed JSON', '{"instanceIds": ['],
    ['an unknown field', { instanceIds: [FIRST], deviceId: DEVICE, admin: true }],
    ['a bad instance ID', { instanceIds: ['../etc/passwd'], deviceId: DEVICE }],
    ['a bad device ID', { instanceIds: [FIRST], deviceId: 'dev ice' }],
    ['too many instances', { instanceIds: ['a', 'b', 'c', 'd'], deviceId: DEVICE }],
    ['renewalHours out of range', { instanceIds: [FIRST], deviceId: DEVICE, renewalHours: 13 }],
    ['no deviceId and no device claim', { instanceIds: [FIRST] }],
  ])('400 invalid_request for %s', async (_label, body) => {
    const result = await invoke(handler, vend(await jwt(), body));
    expectProblem(result, 400, 'invalid_request');
    expect(emulator.calls).toHaveLength(0);
  });

  it('401 unauthenticated with a bare Bearer challenge when no token is sent', async () => {
    const result = await invoke(handler, vend(undefined, { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 401, 'unauthenticated');
    expect(result.headers['www-authenticate']).toBe('Bearer');
  });

  const now = () => Math.floor(Date.now() / 1000);
  it.each<[string, () => Promise<string>]>([
    ['a malformed token', async () => 'not-a-jwt'],
    ['a bad signature', async () => (await jwt()).replace(/.{8}$/, 'AAAAAAAA')],
    ['an expired token', () => jwt({ exp: now() - 3600, iat: now() - 7200 })],
    ['a token not yet valid', () => jwt({ nbf: now() + 3600 })],
    ['a wrong issuer', () => jwt({ iss: 'https://evil.example/' })],
    ['a wrong audience', () => jwt({ aud: 'another-api' })],
    ['an unsigned token (alg none)', async () => unsecuredToken({ iss: ACME, aud: AUDIENCE, sub: 'alice', exp: now() + 600 })],
    [
      'HS256 signed with the public key',
      async () => hs256Token({ iss: ACME, aud: AUDIENCE, sub: 'alice', exp: now() + 600 }, (await publicKeySecrets(rsa)).pem, { kid: rsa.kid }),
    ],
    ['an unknown kid', () => jwt({}, { kid: 'rotated-away' })],
  ])('401 unauthenticated with error="invalid_token" for %s, and no upstream call', async (_label, makeToken) => {
    const result = await invoke(handler, vend(await makeToken(), { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 401, 'unauthenticated');
    expect(result.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(emulator.calls).toHaveLength(0);
  });

  it('403 insufficient_scope when the issuer requires a scope the token lacks', async () => {
    const result = await invoke(handler, vend(await jwt({ scope: 'profile' }), { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 403, 'insufficient_scope');
    expect(result.headers['www-authenticate']).toContain('error="insufficient_scope"');
    // The scope check is part of authentication, which comes before counting.
    expect(result.headers.ratelimit).toBeUndefined();
  });

  it('403 instance_not_allowed listing exactly the denied IDs, with nothing sent upstream', async () => {
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST, NOT_MINE, 'other-phone'], deviceId: DEVICE }));
    expectProblem(result, 403, 'instance_not_allowed');
    expect(result.body.deniedInstanceIds).toEqual([NOT_MINE, 'other-phone']);
    expect(emulator.calls).toHaveLength(0);
  });

  it('403 instance_not_allowed when a partner claims an instance outside its pool', async () => {
    const token = await jwt({ iss: PARTNER, sub: 'partner-outside', phones: [FIRST, SECOND] }, {}, ec);
    const result = await invoke(handler, vend(token, { instanceIds: [SECOND], deviceId: DEVICE }));
    expectProblem(result, 403, 'instance_not_allowed');
    expect(result.body.deniedInstanceIds).toEqual([SECOND]);
  });

  it("403 device_not_allowed when deviceId differs from the token's device claim", async () => {
    const result = await invoke(handler, vend(await jwt({ device_id: 'phone-of-alice' }), { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 403, 'device_not_allowed');
    expect(emulator.calls).toHaveLength(0);
  });

  it('403 access_revoked for a revoked caller, and again for a whole revoked issuer, before any quota or upstream', async () => {
    const revocations = new DynamoRevocationStore({ client: dynamo.client, tableName: dynamo.tableName });
    const body = { instanceIds: [FIRST], deviceId: DEVICE };
    await revocations.revokeCaller(ACME, 'mallory', { reason: 'stolen laptop' });
    const caller = await invoke(handler, vend(await jwt({ sub: 'mallory' }), body));
    expectProblem(caller, 403, 'access_revoked');
    expect(JSON.stringify(caller.body)).not.toContain('stolen laptop');
    expect(caller.headers.ratelimit).toBeUndefined();

    await revocations.revokeIssuer(PARTNER, { reason: 'contract ended' });
    const partner = await invoke(handler, vend(await jwt({ iss: PARTNER, sub: 'anyone', phones: [FIRST] }, {}, ec), body));
    expectProblem(partner, 403, 'access_revoked');
    await revocations.unrevokeIssuer(PARTNER);
    expect(emulator.calls).toHaveLength(0);
  });

  it('429 rate_limited with Retry-After and the RateLimit fields once the caller quota is spent', async () => {
    const token = await jwt({ iss: PARTNER, sub: 'partner-quota', phones: [FIRST] }, {}, ec);
    const first = await invoke(handler, { method: 'GET', path: '/v1/instances', headers: { authorization: `Bearer ${token}` } });
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"caller";q=2;w=60');
    expect(first.headers.ratelimit).toMatch(/^"caller";r=1;t=\d+$/);
    await invoke(handler, { method: 'GET', path: '/v1/instances', headers: { authorization: `Bearer ${token}` } });
    const spent = await invoke(handler, vend(token, { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(spent, 429, 'rate_limited');
    expect(Number(spent.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(spent.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(spent.headers.ratelimit).toMatch(/^"caller";r=0;t=\d+$/);
    expect(emulator.calls).toHaveLength(0);
  });

  it('does not count unauthenticated requests against anyone', async () => {
    const token = await jwt({ iss: PARTNER, sub: 'partner-flooded', phones: [FIRST] }, {}, ec);
    for (let i = 0; i < 5; i++) {
      const forged = await invoke(handler, vend(token.replace(/.{8}$/, 'AAAAAAAA'), {}));
      expect(forged.status).toBe(401);
      expect(forged.headers.ratelimit).toBeUndefined();
    }
    const real = await invoke(handler, { method: 'GET', path: '/v1/instances', headers: { authorization: `Bearer ${token}` } });
    expect(real.headers.ratelimit).toMatch(/^"caller";r=1;/);
  });

  it('404 not_found for an unknown route', async () => {
    expectProblem(await invoke(handler, { method: 'GET', path: '/v1/nothing-here' }), 404, 'not_found');
  });

  it('405 method_not_allowed with Allow for a known route and a wrong method', async () => {
    const result = await invoke(handler, { method: 'DELETE', path: '/v1/stream-tokens' });
    expectProblem(result, 405, 'method_not_allowed');
    expect(result.headers.allow).toBe('POST');
  });

  it('413 payload_too_large for a body over 16 KiB, before authentication', async () => {
    const body = JSON.stringify({ instanceIds: [FIRST], deviceId: DEVICE, padding: 'x'.repeat(16 * 1024) });
    expectProblem(await invoke(handler, vend(undefined, body)), 413, 'payload_too_large');
  });

  it('415 unsupported_media_type for a body that is not application/json', async () => {
    const result = await invoke(handler, vend(await jwt(), 'instanceIds=x', { 'content-type': 'application/x-www-form-urlencoded' }));
    expectProblem(result, 415, 'unsupported_media_type');
  });

  it.each([
    ['FailedOperation', { kind: 'error' as const, code: 'FailedOperation' }],
    ['our credentials refused', { kind: 'error' as const, code: 'AuthFailure.SecretIdNotFound' }],
    ['an HTTP 502 from a gateway', { kind: 'http' as const, status: 502, body: '<html>Bad Gateway</html>' }],
    ['a body that is not JSON', { kind: 'non-json' as const }],
  ])('502 upstream_error for %s, without upstream internals', async (_label, fault) => {
    emulator.setFault(fault);
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 502, 'upstream_error');
    expect(JSON.stringify(result.body)).not.toMatch(/FailedOperation|AuthFailure|Bad Gateway|html/);
  });

  it('503 upstream_busy with Retry-After when the upstream keeps answering RequestLimitExceeded', async () => {
    emulator.setFault({ kind: 'error', code: 'RequestLimitExceeded' });
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 503, 'upstream_busy');
    expect(Number(result.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('504 upstream_timeout within the time budget when the upstream does not answer', async () => {
    emulator.setFault({ kind: 'hang' });
    const started = Date.now();
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 504, 'upstream_timeout');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('500 internal when an issuer signing keys cannot be fetched', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signToken(rsa, { iss: BROKEN, aud: AUDIENCE, sub: 'x', exp: now + 600 }, { kid: rsa.kid });
    const result = await invoke(handler, vend(token, { instanceIds: [FIRST], deviceId: DEVICE }));
    expectProblem(result, 500, 'internal');
    expect(result.body.detail).toBe('An unexpected error occurred');
  });
});

describe('CORS', () => {
  it('answers a preflight from an allowed origin', async () => {
    const result = await invoke(handler, {
      method: 'OPTIONS',
      path: '/v1/stream-tokens',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(result.status).toBe(204);
    expect(result.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(result.headers['access-control-allow-headers']).toMatch(/Authorization/i);
  });

  it('routes a preflight like any request: the headers every response carries, and 404 for an unknown path', async () => {
    // Reaches the function when API Gateway has no CORS configuration; http-cors used to answer it
    // before the other middlewares, without X-Request-Id, nosniff or the security headers.
    const preflight = (path: string, origin: string) =>
      invoke(handler, { method: 'OPTIONS', path, headers: { origin, 'access-control-request-method': 'POST' } });
    const allowed = await preflight('/v1/stream-tokens', ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers).toMatchObject({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    expect(allowed.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(allowed.headers['strict-transport-security']).toBeDefined();
    const other = await preflight('/v1/stream-tokens', 'https://evil.example');
    expect(other.status).toBe(204);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expectProblem(await preflight('/v1/nothing-here', ORIGIN), 404, 'not_found');
  });

  it('grants nothing to another origin', async () => {
    const result = await invoke(handler, vend(await jwt(), { instanceIds: [FIRST], deviceId: DEVICE }, { origin: 'https://evil.example' }));
    expect(result.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('lets an allowed origin read error responses too', async () => {
    const result = await invoke(handler, vend(undefined, { instanceIds: [FIRST] }, { origin: ORIGIN }));
    expect(result.status).toBe(401);
    expect(result.headers['access-control-allow-origin']).toBe(ORIGIN);
  });
});
