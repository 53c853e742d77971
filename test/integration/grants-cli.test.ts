import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { DynamoEntitlementStore } from '../../lib/entitlements/dynamodb-store';
import { DynamoRevocationStore } from '../../lib/revocations';
import { ROOT, startTestDynamo, TSX, type TestDynamo } from '../helpers/dynamo';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const ISSUER = 'https://login.acme.example/';

describe('grants CLI (tsx scripts/grants.ts against dynalite)', () => {
  let dynamo: TestDynamo;

  /** Runs `node_modules/.bin/tsx scripts/grants.ts ...` as the operator would, against the test table. */
  const cli = (args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [TSX, 'scripts/grants.ts', ...args],
        { cwd: ROOT, env: { ...process.env, TABLE_NAME: dynamo.tableName, DYNAMODB_ENDPOINT: dynamo.endpoint, ...env } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  const json = (result: CliResult): unknown => {
    // stderr is shown when this fails; it is not required empty (Node may print runtime warnings there).
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 });
    return JSON.parse(result.stdout);
  };

  beforeAll(async () => {
    dynamo = await startTestDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it('grants, lists and revokes a caller\'s instances', async () => {
    expect(json(await cli(['grant', '--issuer', ISSUER, '--subject', 'alice', 'i-2', 'i-1']))).toEqual({
      issuer: ISSUER,
      subject: 'alice',
      instanceIds: ['i-1', 'i-2'],
    });
    expect(json(await cli(['revoke-instances', '--issuer', ISSUER, '--subject', 'alice', 'i-1']))).toEqual({
      issuer: ISSUER,
      subject: 'alice',
      instanceIds: ['i-2'],
    });
    expect(json(await cli(['list', '--issuer', ISSUER]))).toEqual({
      issuer: ISSUER,
      grants: [{ subject: 'alice', instanceIds: ['i-2'] }],
    });
  });

  it('manages a partner pool', async () => {
    expect(json(await cli(['pool', 'add', '--issuer', ISSUER, 'p-1', 'p-2']))).toEqual({ issuer: ISSUER, pool: ['p-1', 'p-2'] });
    expect(await new DynamoEntitlementStore(dynamo.client, dynamo.tableName).poolInstanceIds(ISSUER)).toEqual(['p-1', 'p-2']);
    expect(json(await cli(['pool', 'remove', '--issuer', ISSUER, 'p-1']))).toEqual({ issuer: ISSUER, pool: ['p-2'] });
  });

  it('revokes a caller with a reason and an expiry, shows it in list, and unrevokes it', async () => {
    const before = Date.now();
    const revoked = json(await cli(['revoke-caller', '--issuer', ISSUER, '--subject', 'mallory', '--reason', 'leaked token', '--expires-in', '24h']));
    expect(revoked).toMatchObject({ issuer: ISSUER, subject: 'mallory', revoked: { reason: 'leaked token' } });
    const expiresAt = Date.parse((revoked as { revoked: { expiresAt: string } }).revoked.expiresAt);
    expect(expiresAt - before).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(expiresAt - before).toBeLessThan(24 * 3600_000 + 60_000);

    expect(json(await cli(['list', '--issuer', ISSUER, '--subject', 'mallory']))).toEqual({
      issuer: ISSUER,
      subject: 'mallory',
      instanceIds: [],
      revoked: { scope: 'caller', reason: 'leaked token' },
    });
    const revocations = new DynamoRevocationStore({ client: dynamo.client, tableName: dynamo.tableName });
    expect(await revocations.unrevokeCaller(ISSUER, 'mallory')).toBe(true);
    expect(json(await cli(['revoke-issuer', '--issuer', ISSUER, '--reason', 'contract ended']))).toEqual({
      issuer: ISSUER,
      revoked: { reason: 'contract ended', expiresAt: null },
    });
    expect(await revocations.check(ISSUER, 'anyone')).toEqual({ scope: 'issuer', reason: 'contract ended' });
  });

  it('exits non-zero with a message on bad arguments or configuration, writing nothing', async () => {
    const cases: [string[], Record<string, string | undefined>, RegExp][] = [
      [['grant', '--issuer', ISSUER, 'i-1'], {}, /grant requires --subject/],
      [['grant', '--issuer', ISSUER, '--subject', 'bob', 'not valid'], {}, /not a valid instance ID/],
      [['revoke-caller', '--issuer', ISSUER, '--subject', 'bob', '--reason', 'x', '--expires-in', 'soon'], {}, /--expires-in/],
      [['frobnicate'], {}, /unknown command "frobnicate"/],
      [['list', '--issuer', ISSUER], { TABLE_NAME: '' }, /TABLE_NAME/],
    ];
    const results = await Promise.all(cases.map(([args, env]) => cli(args, env)));
    results.forEach((result, i) => {
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(cases[i]![2]);
    });
    expect(await new DynamoEntitlementStore(dynamo.client, dynamo.tableName).grantedInstanceIds(ISSUER, 'bob')).toEqual([]);
  });

  it('prints usage for --help', async () => {
    const result = await cli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: npm run grants --');
  });
});
