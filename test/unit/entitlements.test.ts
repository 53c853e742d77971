import { describe, expect, it } from '@jest/globals';
import type { Caller } from '../../lib/auth/caller';
import { ConfigError } from '../../lib/config';
import { allowedInstanceIds, deniedInstanceIds } from '../../lib/entitlements/allowed-instances';
import { FileEntitlementStore } from '../../lib/entitlements/file-store';

const ACME = 'https://login.acme.example/';
const OTHER = 'https://id.other.example/';

const store = FileEntitlementStore.fromDocument({
  grants: [
    { issuer: ACME, subject: 'alice', instanceIds: ['phone-b', 'phone-a'] },
    { issuer: ACME, subject: 'alice', instanceIds: ['phone-c'] },
    { issuer: OTHER, subject: 'alice', instanceIds: ['other-1'] },
  ],
  pools: [{ issuer: ACME, instanceIds: ['pool-1', 'pool-2'] }],
});

const caller = (overrides: Partial<Caller>): Caller => ({
  issuerName: 'acme',
  issuer: ACME,
  subject: 'alice',
  scopes: [],
  claimedInstanceIds: undefined,
  deviceId: undefined,
  ...overrides,
});

describe('allowedInstanceIds', () => {
  it('returns a caller its grants, merged across entries and sorted', async () => {
    expect(await allowedInstanceIds(store, caller({}))).toEqual(['phone-a', 'phone-b', 'phone-c']);
  });

  it('keys grants by issuer and subject together: the same subject at another issuer gets nothing of acme', async () => {
    expect(await allowedInstanceIds(store, caller({ issuer: OTHER }))).toEqual(['other-1']);
  });

  it('denies by default: an unknown subject gets nothing', async () => {
    expect(await allowedInstanceIds(store, caller({ subject: 'mallory' }))).toEqual([]);
  });

  it('lets a partner claim reach only what is in its pool', async () => {
    const partner = caller({ subject: 'bob', claimedInstanceIds: ['pool-2', 'phone-a', 'nowhere'] });
    expect(await allowedInstanceIds(store, partner)).toEqual(['pool-2']);
  });

  it('gives a claim nothing at an issuer without a pool', async () => {
    expect(await allowedInstanceIds(store, caller({ issuer: OTHER, subject: 'bob', claimedInstanceIds: ['other-1'] }))).toEqual([]);
  });

  it('unites grants with pooled claims', async () => {
    expect(await allowedInstanceIds(store, caller({ claimedInstanceIds: ['pool-1'] }))).toEqual([
      'phone-a',
      'phone-b',
      'phone-c',
      'pool-1',
    ]);
  });
});

describe('deniedInstanceIds', () => {
  it('lists exactly the requested IDs outside the allowed set, in request order', () => {
    expect(deniedInstanceIds(['x', 'phone-a', 'y'], ['phone-a', 'phone-b'])).toEqual(['x', 'y']);
    expect(deniedInstanceIds(['phone-a'], ['phone-a'])).toEqual([]);
  });
});

describe('FileEntitlementStore validation', () => {
  it.each([
    ['a grant without subject', { grants: [{ issuer: ACME, instanceIds: ['a'] }] }, 'grants.0.subject'],
    ['an instance ID with a space', { pools: [{ issuer: ACME, instanceIds: ['a b'] }] }, 'pools.0.instanceIds.0'],
    ['an unknown top-level field', { grants: [], extra: true }, 'extra'],
    ['a non-object document', ['grants'], 'ENTITLEMENTS_FILE'],
  ])('refuses %s at load, naming ENTITLEMENTS_FILE and the path', (_label, document, fragment) => {
    expect(() => FileEntitlementStore.fromDocument(document, 'grants.json')).toThrow(ConfigError);
    expect(() => FileEntitlementStore.fromDocument(document, 'grants.json')).toThrow(fragment);
  });

  it('names the variable when the file cannot be read', () => {
    expect(() => FileEntitlementStore.fromFile('/nonexistent/grants.json')).toThrow(
      'ENTITLEMENTS_FILE names "/nonexistent/grants.json", which cannot be read (ENOENT)',
    );
  });

  it('loads the demo grants shipped for npm start', async () => {
    const demo = FileEntitlementStore.fromFile('local/demo-grants.json');
    expect(await demo.grantedInstanceIds('http://127.0.0.1:4520/', 'demo-user')).toHaveLength(2);
  });
});
