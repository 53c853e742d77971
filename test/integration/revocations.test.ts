import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { DynamoRevocationStore, MAX_REVOCATION_CACHE_MS, type RevocationStore } from '../../lib/revocations';
import type { WarnLogger } from '../../lib/state/degraded';
import { createDocumentClient } from '../../lib/state/table';
import { spawnDynaliteProcess } from '../../local/dynalite-process';
import { startTestDynamo, unreachableEndpoint, type TestDynamo } from '../helpers/dynamo';

const ISSUER = 'https://login.acme.example/';
const PARTNER = 'https://partner.example/';

describe('DynamoRevocationStore (dynalite)', () => {
  let dynamo: TestDynamo;
  let clock: number;
  const now = (): number => clock;
  const store = (cacheMs?: number): DynamoRevocationStore =>
    new DynamoRevocationStore({ client: dynamo.client, tableName: dynamo.tableName, now, ...(cacheMs !== undefined && { cacheMs }) });

  beforeAll(async () => {
    dynamo = await startTestDynamo();
    clock = Date.parse('2026-12-03T10:00:00Z');
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it('finds nothing for a caller that was never revoked', async () => {
    const port: RevocationStore = store();
    expect(await port.check(ISSUER, 'alice')).toBeUndefined();
  });

  it('revokes a caller on the very next check by default, and unrevokes it', async () => {
    const admin = store();
    const reader = store();
    expect(await reader.check(ISSUER, 'mallory')).toBeUndefined();
    await admin.revokeCaller(ISSUER, 'mallory', { reason: 'leaked token' });
    expect(await reader.check(ISSUER, 'mallory')).toEqual({ scope: 'caller', reason: 'leaked token' });
    expect(await reader.check(ISSUER, 'alice')).toBeUndefined();
    expect(await admin.unrevokeCaller(ISSUER, 'mallory')).toBe(true);
    expect(await admin.unrevokeCaller(ISSUER, 'mallory')).toBe(false);
    expect(await reader.check(ISSUER, 'mallory')).toBeUndefined();
  });

  it('revokes every caller of an issuer, reported before a caller revocation', async () => {
    const partner = 'https://partner.example/';
    const admin = store();
    await admin.revokeCaller(partner, 'bob', { reason: 'caller reason' });
    await admin.revokeIssuer(partner, { reason: 'contract ended' });
    expect(await admin.check(partner, 'anyone')).toEqual({ scope: 'issuer', reason: 'contract ended' });
    expect(await admin.check(partner, 'bob')).toEqual({ scope: 'issuer', reason: 'contract ended' });
    expect(await admin.check(ISSUER, 'anyone')).toBeUndefined();
    expect(await admin.unrevokeIssuer(partner)).toBe(true);
    expect(await admin.check(partner, 'bob')).toEqual({ scope: 'caller', reason: 'caller reason' });
  });

  it('ignores a revocation once its expiresAt has passed, by the clock (no TTL needed)', async () => {
    const admin = store();
    await admin.revokeCaller(ISSUER, 'temp', { reason: 'cool-down', expiresAt: new Date(clock + 60_000) });
    expect(await admin.check(ISSUER, 'temp')).toEqual({ scope: 'caller', reason: 'cool-down' });
    clock += 60_000;
    expect(await admin.check(ISSUER, 'temp')).toBeUndefined();
    expect(await admin.unrevokeCaller(ISSUER, 'temp')).toBe(false);
  });

  it('reuses a cached answer for at most cacheMs, then sees the revocation', async () => {
    const admin = store();
    const cached = store(2000);
    const start = clock;
    expect(await cached.check(ISSUER, 'eve')).toBeUndefined();
    await admin.revokeCaller(ISSUER, 'eve', { reason: 'abuse' });
    clock = start + 1999;
    expect(await cached.check(ISSUER, 'eve')).toBeUndefined();
    clock = start + 2000;
    expect(await cached.check(ISSUER, 'eve')).toEqual({ scope: 'caller', reason: 'abuse' });
    await admin.unrevokeCaller(ISSUER, 'eve');
    clock = start + 3999;
    expect(await cached.check(ISSUER, 'eve')).toEqual({ scope: 'caller', reason: 'abuse' });
    clock = start + 4000;
    expect(await cached.check(ISSUER, 'eve')).toBeUndefined();
  });

  it('applies a cached revocation expiry by the clock, not by the cache', async () => {
    const admin = store();
    const cached = store(5000);
    await admin.revokeCaller(ISSUER, 'brief', { reason: 'short', expiresAt: new Date(clock + 1000) });
    expect(await cached.check(ISSUER, 'brief')).toEqual({ scope: 'caller', reason: 'short' });
    clock += 1000;
    expect(await cached.check(ISSUER, 'brief')).toBeUndefined();
  });

  it('refuses a cache bound above the documented maximum, and an empty reason', async () => {
    expect(MAX_REVOCATION_CACHE_MS).toBe(5000);
    expect(() => store(MAX_REVOCATION_CACHE_MS + 1)).toThrow(RangeError);
    expect(() => store(-1)).toThrow(RangeError);
    await expect(store().revokeCaller(ISSUER, 'x', { reason: '  ' })).rejects.toThrow(RangeError);
  });

  it('without `degraded` (the admin command) a check rejects when DynamoDB is unreachable', async () => {
    const client = createDocumentClient({ endpoint: await unreachableEndpoint() });
    try {
      const unreachable = new DynamoRevocationStore({ client, tableName: dynamo.tableName });
      await expect(unreachable.check(ISSUER, 'alice')).rejects.toThrow();
    } finally {
      client.destroy();
    }
  });
});

describe('DynamoRevocationStore when DynamoDB refuses one request', () => {
  it('fails that check, and keeps every other caller on fresh reads (a refusal is not an outage)', async () => {
    const dynamo = await startTestDynamo();
    const warn = jest.fn<WarnLogger['warn']>();
    try {
      const admin = new DynamoRevocationStore({ client: dynamo.client, tableName: dynamo.tableName });
      const store = new DynamoRevocationStore({ client: dynamo.client, tableName: dynamo.tableName, degraded: { logger: { warn } } });
      // Over DynamoDB's 1024-byte sort-key limit: the table answers ValidationException. (The authenticator
      // refuses such a subject first; this is the second line of defence.)
      await expect(store.check(ISSUER, 'x'.repeat(1100))).rejects.toMatchObject({ name: 'ValidationException' });
      await admin.revokeCaller(ISSUER, 'bob', { reason: 'revoked after the refusal' });
      expect(await store.check(ISSUER, 'bob')).toEqual({ scope: 'caller', reason: 'revoked after the refusal' });
      expect(warn).not.toHaveBeenCalled();
    } finally {
      await dynamo.close();
    }
  });
});

describe('DynamoRevocationStore when DynamoDB stops answering', () => {
  it('takes a request timeout for an outage, not a refusal: it falls back and logs StateDegraded', async () => {
    // Accepts connections and never answers: the client's own request timeout must count as "unavailable".
    const silent = createServer(() => undefined).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const client = createDocumentClient({
      endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      timeouts: { connectionMs: 200, requestMs: 300 },
    });
    const warn = jest.fn<WarnLogger['warn']>();
    try {
      const store = new DynamoRevocationStore({ client, tableName: 'silent', degraded: { logger: { warn } } });
      expect(await store.check(ISSUER, 'alice')).toBeUndefined();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ metric: 'StateDegraded', component: 'revocations', error: expect.stringContaining('TimeoutError') });
    } finally {
      client.destroy();
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe('DynamoRevocationStore when DynamoDB dies (stale-if-error, dynalite child process)', () => {
  it('keeps refusing the revocations it saw, lets everyone else through, and logs StateDegraded once per probe period', async () => {
    const child = await spawnDynaliteProcess();
    const client = createDocumentClient({ endpoint: child.endpoint, timeouts: { connectionMs: 2000, requestMs: 10_000 } });
    const warn = jest.fn<WarnLogger['warn']>();
    let clock = Date.now();
    try {
      const admin = new DynamoRevocationStore({ client, tableName: child.tableName });
      const store = new DynamoRevocationStore({
        client,
        tableName: child.tableName,
        now: () => clock,
        degraded: { logger: { warn }, probeAfterMs: 5000 },
      });
      await admin.revokeCaller(ISSUER, 'mallory', { reason: 'leaked token' });
      await admin.revokeCaller(ISSUER, 'temp', { reason: 'cool-down', expiresAt: new Date(clock + 60_000) });
      await admin.revokeCaller(ISSUER, 'eve', { reason: 'abuse' });
      await admin.revokeIssuer(PARTNER, { reason: 'contract ended' });
      // What this container sees before the outage; eve's revocation is lifted and seen lifted.
      expect(await store.check(ISSUER, 'mallory')).toEqual({ scope: 'caller', reason: 'leaked token' });
      expect(await store.check(ISSUER, 'temp')).toEqual({ scope: 'caller', reason: 'cool-down' });
      expect(await store.check(ISSUER, 'eve')).toEqual({ scope: 'caller', reason: 'abuse' });
      expect(await store.check(PARTNER, 'bob')).toEqual({ scope: 'issuer', reason: 'contract ended' });
      await admin.unrevokeCaller(ISSUER, 'eve');
      expect(await store.check(ISSUER, 'eve')).toBeUndefined();
      expect(warn).not.toHaveBeenCalled();

      await child.kill();
      expect(await store.check(ISSUER, 'mallory')).toEqual({ scope: 'caller', reason: 'leaked token' });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ metric: 'StateDegraded', component: 'revocations', failures: 1 });
      // The issuer revocation was seen through bob: it refuses a caller of that issuer never seen before.
      expect(await store.check(PARTNER, 'never-seen')).toEqual({ scope: 'issuer', reason: 'contract ended' });
      // Unknown, and last seen lifted: both let through.
      expect(await store.check(ISSUER, 'never-seen')).toBeUndefined();
      expect(await store.check(ISSUER, 'eve')).toBeUndefined();
      // Within the probe period DynamoDB was not tried again: still one failure.
      expect(warn).toHaveBeenCalledTimes(1);

      clock += 61_000; // expiresAt is stored in whole seconds, rounded up
      // A remembered revocation still lapses by its own expiry; an open-ended one still refuses.
      expect(await store.check(ISSUER, 'temp')).toBeUndefined();
      expect(await store.check(ISSUER, 'mallory')).toEqual({ scope: 'caller', reason: 'leaked token' });
      expect(warn).toHaveBeenCalledTimes(2);
      expect(warn.mock.calls[1]?.[1]).toMatchObject({ metric: 'StateDegraded', component: 'revocations', failures: 2 });
      expect(store.stats()).toEqual({ failures: 2, fallbackDecisions: 6 });
    } finally {
      client.destroy();
      await child.kill();
    }
  });
});
