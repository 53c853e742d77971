import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CONFIG_VARIABLES, LOCAL_ONLY_VARIABLES } from '../../lib/config';

/**
 * What `serverless package` puts in the deployed function's environment: a variable that the
 * configuration reads but serverless.yml does not pass on cannot be set in a deploy at all (the
 * guard's tuning variables were missing until this test).
 */
const run = promisify(execFile);
let dir: string;
let environment: Record<string, string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'deploy-package-'));
  await run(join('node_modules', '.bin', 'serverless'), ['package', '--stage', 'ci', '--package', dir], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      UPSTREAM_GUARD_MARGIN_MS: '120',
      TOKEN_REUSE_SECONDS: '5',
      TENCENTCLOUD_SECRET_KEY: 'must-never-be-deployed',
    },
    timeout: 60_000,
  });
  const template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as {
    Resources: Record<string, { Type: string; Properties: { Environment?: { Variables: Record<string, string> } } }>;
  };
  const functions = Object.values(template.Resources).filter((resource) => resource.Type === 'AWS::Lambda::Function');
  expect(functions).toHaveLength(1);
  environment = functions[0]?.Properties.Environment?.Variables ?? {};
}, 90_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the deploy package', () => {
  it('passes every configuration variable on to the function', () => {
    const deployable = CONFIG_VARIABLES.filter((variable) => !(LOCAL_ONLY_VARIABLES as readonly string[]).includes(variable));
    expect(deployable.filter((variable) => !(variable in environment))).toEqual([]);
  });

  it('carries the values set in the deploying shell', () => {
    expect(environment).toMatchObject({ STAGE: 'ci', UPSTREAM_GUARD_MARGIN_MS: '120', TOKEN_REUSE_SECONDS: '5' });
  });

  it('never carries inline Tencent keys, whatever the shell holds', () => {
    for (const variable of LOCAL_ONLY_VARIABLES) expect(environment).not.toHaveProperty(variable);
    expect(JSON.stringify(environment)).not.toContain('must-never-be-deployed');
  });
});
