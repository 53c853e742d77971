import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { allowedInstanceIds } from '../../lib/entitlements/allowed-instances';
import { DynamoEntitlementStore, MAX_STALE_ENTITLEMENT_MS } from '../../lib/entitlements/dynamodb-store';
import type { EntitlementStore } from '../../lib/entitlements/store';
import type { WarnLogger } from '../../lib/state/degraded';
import { createDocumentClient, keys } from '../../lib/state/table';
import { spawnDynaliteProcess } from '../../local/dynalite-process';
import { startTestDynamo, testCaller, type TestDynamo } from '../helpers/dynamo';

const ISSUER = 'https://login.acme.example/';

describe('DynamoEntitlementStore (dynalite)', () => {
  let dynamo: TestDynamo;
  let store: DynamoEntitlementStore;

  beforeAll(async () => {
    dynamo = await startTestDynamo();
    store = new DynamoEntitlementStore(dynamo.client, dynamo.tableName);
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it('answers empty for a caller or pool that was never granted (deny by default)', async () => {
    const port: EntitlementStore = store;
    expect(await port.grantedInstanceIds(ISSUER, 'nobody')).toEqual([]);
    expect(await port.poolInstanceIds('https://unknown.example/')).toEqual([]);
  });

  it('grants instances as a set: added, de-duplicated, sorted', async () => {
    expect(await store.grantInstances(ISSUER, 'alice', ['i-2', 'i-1', 'i-2'])).toEqual(['i-1', 'i-2']);
    expect(await store.grantInstances(ISSUER, 'alice', ['i-3', 'i-1'])).toEqual(['i-1', 'i-2', 'i-3']);
    expect(await store.grantedInstanceIds(ISSUER, 'alice')).toEqual(['i-1', 'i-2', 'i-3']);
  });

  it('never loses an instance to concurrent grants (ADD on a string set)', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `c-${String(i).padStart(2, '0')}`);
    await Promise.all(ids.map((id) => store.grantInstances(ISSUER, 'carol', [id])));
    expect(await store.grantedInstanceIds(ISSUER, 'carol')).toEqual(ids);
  });

  it('revokes instances, deletes the emptied grant, and creates nothing for an unknown caller', async () => {
    await store.grantInstances(ISSUER, 'bob', ['b-1', 'b-2']);
    expect(await store.revokeInstances(ISSUER, 'bob', ['b-1', 'not-granted'])).toEqual(['b-2']);
    expect(await store.revokeInstances(ISSUER, 'bob', ['b-2'])).toEqual([]);
    expect(await store.revokeInstances(ISSUER, 'ghost', ['b-1'])).toEqual([]);
    for (const subject of ['bob', 'ghost']) {
      const { Item } = await dynamo.client.send(
        new GetCommand({ TableName: dynamo.tableName, Key: keys.grant(ISSUER, subject), ConsistentRead: true }),
      );
      expect(Item).toBeUndefined();
    }
  });

  it('lists one caller or every caller of an issuer, and keeps issuers apart even when values contain "#"', async () => {
    // Joined naively as `<issuer>#<subject>`, both would read "https://a#b#c".
    await store.grantInstances('https://a#b', 'c', ['ab-c']);
    await store.grantInstances('https://a', 'b#c', ['a-bc']);
    expect(await store.listGrants('https://a#b')).toEqual([{ subject: 'c', instanceIds: ['ab-c'] }]);
    expect(await store.listGrants('https://a')).toEqual([{ subject: 'b#c', instanceIds: ['a-bc'] }]);
    expect(await store.listGrants(ISSUER, 'alice')).toEqual([{ subject: 'alice', instanceIds: ['i-1', 'i-2', 'i-3'] }]);
    expect((await store.listGrants(ISSUER)).map((grant) => grant.subject)).toEqual(['alice', 'carol']);
  });

  it('adds to, removes from, replaces and deletes a partner pool', async () => {
    const partner = 'https://partner.example/';
    expect(await store.addPoolInstances(partner, ['p-2', 'p-1'])).toEqual(['p-1', 'p-2']);
    expect(await store.removePoolInstances(partner, ['p-1'])).toEqual(['p-2']);
    expect(await store.setPool(partner, ['p-9', 'p-8'])).toEqual(['p-8', 'p-9']);
    expect(await store.poolInstanceIds(partner)).toEqual(['p-8', 'p-9']);
    expect(await store.setPool(partner, [])).toEqual([]);
    expect(await store.poolInstanceIds(partner)).toEqual([]);
  });

  it('feeds allowedInstanceIds: grants plus the claimed instances inside the pool, nothing beyond', async () => {
    const partner = 'https://partner2.example/';
    await store.grantInstances(partner, 'dave', ['g-1']);
    await store.setPool(partner, ['p-1', 'p-2']);
    const caller = testCaller({ issuer: partner, subject: 'dave', claimedInstanceIds: ['p-2', 'outside-pool'] });
    expect(await allowedInstanceIds(store, caller)).toEqual(['g-1', 'p-2']);
  });

  it('refuses malformed or missing instance IDs before writing', async () => {
    await expect(store.grantInstances(ISSUER, 'alice', ['has space'])).rejects.toThrow(RangeError);
    await expect(store.grantInstances(ISSUER, 'alice', [])).rejects.toThrow(RangeError);
    await expect(store.addPoolInstances(ISSUER, ['x'.repeat(129)])).rejects.toThrow(RangeError);
    expect(await store.grantedInstanceIds(ISSUER, 'alice')).toEqual(['i-1', 'i-2', 'i-3']);
  });

  it('fails a read whose key DynamoDB refuses, and keeps reading fresh grants for everyone else', async () => {
    const warn = jest.fn<WarnLogger['warn']>();
    const reader = new DynamoEntitlementStore(dynamo.client, dynamo.tableName, { degraded: { logger: { warn } } });
    await store.grantInstances(ISSUER, 'bob', ['i-bob']);
    expect(await reader.grantedInstanceIds(ISSUER, 'bob')).toEqual(['i-bob']);
    await expect(reader.grantedInstanceIds(ISSUER, 'x'.repeat(1100))).rejects.toMatchObject({ name: 'ValidationException' });
    // Removed after the refusal: a container on its fallback would still hand out the remembered grant.
    await store.revokeInstances(ISSUER, 'bob', ['i-bob']);
    expect(await reader.grantedInstanceIds(ISSUER, 'bob')).toEqual([]);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('DynamoEntitlementStore when DynamoDB dies (stale-if-error, dynalite child process)', () => {
  it('serves the last set read for up to 15 minutes, denies anything older or never read, and logs StateDegraded', async () => {
    expect(MAX_STALE_ENTITLEMENT_MS).toBe(15 * 60_000);
    const partner = 'https://partner.example/';
    const child = await spawnDynaliteProcess();
    const client = createDocumentClient({ endpoint: child.endpoint, timeouts: { connectionMs: 2000, requestMs: 10_000 } });
    const warn = jest.fn<WarnLogger['warn']>();
    let clock = Date.now();
    try {
      const admin = new DynamoEntitlementStore(client, child.tableName);
      const store = new DynamoEntitlementStore(client, child.tableName, {
        degraded: { logger: { warn }, probeAfterMs: 5000 },
        now: () => clock,
      });
      const partnerCaller = testCaller({ issuer: partner, subject: 'dave', claimedInstanceIds: ['p-2', 'outside-pool'] });
      await admin.grantInstances(ISSUER, 'alice', ['i-1', 'i-2']);
      await admin.setPool(partner, ['p-1', 'p-2']);
      expect(await allowedInstanceIds(store, partnerCaller)).toEqual(['p-2']);
      expect(await store.grantedInstanceIds(ISSUER, 'alice')).toEqual(['i-1', 'i-2']);
      // A later read replaces the remembered set and its age.
      clock += 60_000;
      await admin.revokeInstances(ISSUER, 'alice', ['i-2']);
      expect(await store.grantedInstanceIds(ISSUER, 'alice')).toEqual(['i-1']);
      const aliceReadAt = clock;
      expect(warn).not.toHaveBeenCalled();

      await child.kill();
      expect(await store.grantedInstanceIds(ISSUER, 'alice')).toEqual(['i-1']);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ metric: 'StateDegraded', component: 'entitlements', failures: 1 });
      expect(await allowedInstanceIds(store, partnerCaller)).toEqual(['p-2']);
      // Never read by this container: deny by default.
      expect(await store.grantedInstanceIds(ISSUER, 'bob')).toEqual([]);
      // The admin operations never fall back, even on a store that does.
      await expect(store.listGrants(ISSUER, 'alice')).rejects.toThrow();
      await expect(store.grantInstances(ISSUER, 'bob', ['i-9'])).rejects.toThrow();

      clock = aliceReadAt + MAX_STALE_ENTITLEMENT_MS;
      expect(await store.grantedInstanceIds(ISSUER, 'alice')).toEqual(['i-1']);
      // The pool was read a minute before alice's grant: already too old.
      expect(await allowedInstanceIds(store, partnerCaller)).toEqual([]);
      clock += 1;
      expect(await store.grantedInstanceIds(ISSUER, 'alice')).toEqual([]);
      expect(warn).toHaveBeenCalledTimes(2);
      expect(store.stats()).toEqual({ failures: 2, fallbackDecisions: 8 });
    } finally {
      client.destroy();
      await child.kill();
    }
  });

  it('without `degraded` (the admin command) the port reads reject too', async () => {
    const child = await spawnDynaliteProcess();
    const client = createDocumentClient({ endpoint: child.endpoint });
    try {
      await child.kill();
      const strict = new DynamoEntitlementStore(client, child.tableName);
      await expect(strict.grantedInstanceIds(ISSUER, 'alice')).rejects.toThrow();
      await expect(strict.poolInstanceIds(ISSUER)).rejects.toThrow();
    } finally {
      client.destroy();
    }
  });
});
