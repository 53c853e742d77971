import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGsEmulator, type GsEmulator, type GsFault } from '../../local/gs-emulator';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';
import { createRsaKey, jwksOf, signToken, startJwksServer, type JwksServer, type TestKey } from '../helpers/jwt';
import { invoke, loadHandler, type ApiHandler } from '../helpers/lambda';

/**
 * Captures every line the service writes during a full run (successes, retries, every upstream
 * failure, bad tokens, an identity-provider outage) at DEBUG level, then looks for secrets in it.
 */
const ISSUER = 'https://login.acme.example/';
const AUDIENCE = 'cloudphone-stream-api';
const INSTANCE = 'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac';
const SECRET_ID = 'log-hygiene-secret-id';
const SECRET_KEY = 'log-hygiene-secret-key-5f1d7c2a9b';

let emulator: GsEmulator;
let jwks: JwksServer;
let key: TestKey;
let handler: ApiHandler;
let dynamo: TestDynamo;
const captured: string[] = [];
const jwtsSent: string[] = [];
const streamTokensReturned: string[] = [];
const restore: Array<() => void> = [];

function capture(stream: NodeJS.WriteStream): void {
  const original = stream.write.bind(stream);
  // Kept, not echoed: the lines are this test's subject, and in the runner's output they would read as failures.
  stream.write = ((chunk: string | Uint8Array) => {
    captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof stream.write;
  restore.push(() => {
    stream.write = original;
  });
}

async function jwt(claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = await signToken(key, { iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: now + 600, ...claims }, { kid: key.kid });
  jwtsSent.push(token);
  return token;
}

async function vend(token: string, fault?: GsFault): Promise<number> {
  emulator.setFault(fault);
  const result = await invoke(handler, {
    method: 'POST',
    path: '/v1/stream-tokens',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ instanceIds: [INSTANCE], deviceId: 'device-1' }),
  });
  for (const token of (result.body.tokens as Array<{ token: string }> | undefined) ?? []) streamTokensReturned.push(token.token);
  return result.status;
}

beforeAll(async () => {
  key = await createRsaKey('hygiene');
  dynamo = await startTestDynamo();
  jwks = await startJwksServer(jwksOf(key));
  emulator = await startGsEmulator({ credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }] });
  const grantsFile = join(mkdtempSync(join(tmpdir(), 'hygiene-')), 'grants.json');
  writeFileSync(grantsFile, JSON.stringify({ grants: [{ issuer: ISSUER, subject: 'alice', instanceIds: [INSTANCE] }] }));
  capture(process.stdout);
  capture(process.stderr);
  handler = loadHandler({
    STAGE: 'local',
    POWERTOOLS_LOG_LEVEL: 'DEBUG',
    AUTH_ISSUERS: JSON.stringify([
      { name: 'acme', issuer: ISSUER, audiences: [AUDIENCE], jwksUri: jwks.jwksUri, algorithms: ['RS256'] },
      { name: 'down', issuer: 'https://down.example/', audiences: [AUDIENCE], jwksUri: 'http://127.0.0.1:9/jwks', algorithms: ['RS256'] },
    ]),
    ENTITLEMENTS_FILE: grantsFile,
    TABLE_NAME: dynamo.tableName,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    TOKEN_REUSE_SECONDS: '0',
    GS_ENDPOINT: emulator.url,
    TENCENTCLOUD_SECRET_ID: SECRET_ID,
    TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
    UPSTREAM_TIMEOUT_MS: '800',
  });
});

afterAll(async () => {
  restore.forEach((undo) => undo());
  await Promise.all([emulator?.close(), jwks?.close(), dynamo?.close()]);
});

describe('log hygiene over a full run', () => {
  it('logs one audit line per request and never a token, JWT, Authorization header or key', async () => {
    const statuses = [
      await vend(await jwt()),
      await vend(await jwt(), { kind: 'error', code: 'RequestLimitExceeded', times: 1 }),
      await vend(await jwt(), { kind: 'error', code: 'InternalError', times: 1 }),
      await vend(await jwt(), { kind: 'error', code: 'AuthFailure.SignatureFailure' }),
      await vend(await jwt(), { kind: 'non-json' }),
      await vend(await jwt(), { kind: 'http', status: 502, body: 'upstream gateway page' }),
      await vend(await jwt(), { kind: 'hang' }),
      await vend(await jwt({ exp: Math.floor(Date.now() / 1000) - 60 })),
      await vend(await jwt({ aud: 'elsewhere' })),
      await vend(await jwt({ iss: 'https://down.example/' })),
      await vend('not.a.jwt'),
    ];
    expect(statuses).toEqual([200, 200, 200, 502, 502, 502, 504, 401, 401, 500, 401]);
    expect(streamTokensReturned).toHaveLength(3);

    const lines = captured.join('').split('\n').filter(Boolean);
    const audit = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.message === 'request');
    expect(audit).toHaveLength(statuses.length);
    expect(audit[0]).toMatchObject({ issuer: 'acme', subject: 'alice', instanceCount: 1, outcome: 'ok', status: 200 });
    expect(audit[0]?.upstreamRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(audit.map((entry) => entry.requestId)).size).toBe(statuses.length);
    expect(typeof audit[0]?.upstreamLatencyMs).toBe('number');
    expect(audit.map((entry) => entry.outcome)).toEqual([
      'ok',
      'ok',
      'ok',
      'upstream_error',
      'upstream_error',
      'upstream_error',
      'upstream_timeout',
      'unauthenticated',
      'unauthenticated',
      'internal',
      'unauthenticated',
    ]);
    // Retries and failures were logged too, so the search below covered more than audit lines.
    expect(lines.some((line) => line.includes('Retrying the stream-token call'))).toBe(true);
    expect(lines.some((line) => line.includes('"level":"ERROR"'))).toBe(true);

    const everything = captured.join('');
    for (const secret of [...jwtsSent, ...streamTokensReturned, SECRET_KEY]) expect(everything).not.toContain(secret);
    for (const jwtValue of jwtsSent) expect(everything).not.toContain(jwtValue.split('.')[2]);
    expect(everything).not.toMatch(/eyJ[\w-]{10,}\.eyJ/);
    expect(everything).not.toMatch(/Bearer |authorization/i);
    expect(everything).not.toContain('upstream gateway page');
  });
});
