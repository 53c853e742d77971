import { parseArgs } from 'node:util';
import { DynamoEntitlementStore } from '../lib/entitlements/dynamodb-store';
import { DynamoRevocationStore } from '../lib/revocations';
import { createDocumentClient } from '../lib/state/table';

const USAGE = `Usage: npm run grants -- <command> [options] [instanceId...]

Grants, partner pools and revocations in the DynamoDB table named by TABLE_NAME
(DYNAMODB_ENDPOINT for a local DynamoDB; otherwise AWS_REGION and the usual AWS credentials).

Commands:
  grant            --issuer <iss> --subject <sub> <instanceId...>   add instances to a caller's grant
  revoke-instances --issuer <iss> --subject <sub> <instanceId...>   remove instances from a caller's grant
  list             --issuer <iss> [--subject <sub>]                 a caller's grant and revocation,
                                                                    or every grant of the issuer
  pool list        --issuer <iss>                                   an issuer's partner pool
  pool add         --issuer <iss> <instanceId...>
  pool remove      --issuer <iss> <instanceId...>
  pool set         --issuer <iss> [instanceId...]                   replace the pool (no IDs: delete it)
  revoke-caller    --issuer <iss> --subject <sub> --reason <text> [--expires-in <n>s|m|h|d]
  revoke-issuer    --issuer <iss> --reason <text> [--expires-in <n>s|m|h|d]
  unrevoke-caller  --issuer <iss> --subject <sub>
  unrevoke-issuer  --issuer <iss>

Revocations take effect on the next request. Output is JSON on stdout.
Exit status: 0 done, 1 DynamoDB failed, 2 bad usage or configuration.`;

/** Wrong arguments or environment: exit status 2 with the usage hint. */
class UsageError extends Error {}

type Option = 'issuer' | 'subject' | 'reason' | 'expires-in';

interface Context {
  options: Partial<Record<Option, string>>;
  instanceIds: string[];
  entitlements: DynamoEntitlementStore;
  revocations: DynamoRevocationStore;
}

interface CommandSpec {
  required: Option[];
  optional?: Option[];
  /** Whether instance IDs follow: at least one, any number (pool set) or none. */
  ids: 'some' | 'any' | 'none';
  run(context: Context): Promise<unknown>;
}

/** Values of options a command requires; `spec.required` guarantees they are present. */
const value = (context: Context, option: Option): string => context.options[option] ?? '';

const COMMANDS: Record<string, CommandSpec> = {
  grant: {
    required: ['issuer', 'subject'],
    ids: 'some',
    run: async (c) => ({
      issuer: value(c, 'issuer'),
      subject: value(c, 'subject'),
      instanceIds: await c.entitlements.grantInstances(value(c, 'issuer'), value(c, 'subject'), c.instanceIds),
    }),
  },
  'revoke-instances': {
    required: ['issuer', 'subject'],
    ids: 'some',
    run: async (c) => ({
      issuer: value(c, 'issuer'),
      subject: value(c, 'subject'),
      instanceIds: await c.entitlements.revokeInstances(value(c, 'issuer'), value(c, 'subject'), c.instanceIds),
    }),
  },
  list: {
    required: ['issuer'],
    optional: ['subject'],
    ids: 'none',
    run: async (c) => {
      const issuer = value(c, 'issuer');
      const subject = c.options.subject;
      if (subject === undefined) return { issuer, grants: await c.entitlements.listGrants(issuer) };
      const [instanceIds, revoked] = await Promise.all([
        c.entitlements.grantedInstanceIds(issuer, subject),
        c.revocations.check(issuer, subject),
      ]);
      return { issuer, subject, instanceIds, revoked: revoked ?? null };
    },
  },
  'pool list': {
    required: ['issuer'],
    ids: 'none',
    run: async (c) => ({ issuer: value(c, 'issuer'), pool: await c.entitlements.poolInstanceIds(value(c, 'issuer')) }),
  },
  'pool add': {
    required: ['issuer'],
    ids: 'some',
    run: async (c) => ({ issuer: value(c, 'issuer'), pool: await c.entitlements.addPoolInstances(value(c, 'issuer'), c.instanceIds) }),
  },
  'pool remove': {
    required: ['issuer'],
    ids: 'some',
    run: async (c) => ({
      issuer: value(c, 'issuer'),
      pool: await c.entitlements.removePoolInstances(value(c, 'issuer'), c.instanceIds),
    }),
  },
  'pool set': {
    required: ['issuer'],
    ids: 'any',
    run: async (c) => ({ issuer: value(c, 'issuer'), pool: await c.entitlements.setPool(value(c, 'issuer'), c.instanceIds) }),
  },
  'revoke-caller': {
    required: ['issuer', 'subject', 'reason'],
    optional: ['expires-in'],
    ids: 'none',
    run: async (c) => {
      const revocation = { reason: value(c, 'reason'), expiresAt: expiresAt(c.options['expires-in']) };
      await c.revocations.revokeCaller(value(c, 'issuer'), value(c, 'subject'), revocation);
      return { issuer: value(c, 'issuer'), subject: value(c, 'subject'), revoked: describe(revocation) };
    },
  },
  'revoke-issuer': {
    required: ['issuer', 'reason'],
    optional: ['expires-in'],
    ids: 'none',
    run: async (c) => {
      const revocation = { reason: value(c, 'reason'), expiresAt: expiresAt(c.options['expires-in']) };
      await c.revocations.revokeIssuer(value(c, 'issuer'), revocation);
      return { issuer: value(c, 'issuer'), revoked: describe(revocation) };
    },
  },
  'unrevoke-caller': {
    required: ['issuer', 'subject'],
    ids: 'none',
    run: async (c) => ({
      issuer: value(c, 'issuer'),
      subject: value(c, 'subject'),
      unrevoked: await c.revocations.unrevokeCaller(value(c, 'issuer'), value(c, 'subject')),
    }),
  },
  'unrevoke-issuer': {
    required: ['issuer'],
    ids: 'none',
    run: async (c) => ({ issuer: value(c, 'issuer'), unrevoked: await c.revocations.unrevokeIssuer(value(c, 'issuer')) }),
  },
};

const DURATION_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_EXPIRY_MS = 3650 * 86_400_000;

function expiresAt(expiresIn: string | undefined): Date | undefined {
  if (expiresIn === undefined) return undefined;
  const match = /^(\d+)([smhd])$/.exec(expiresIn);
  const ms = match ? Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? ''] ?? 0) : 0;
  if (ms <= 0 || ms > MAX_EXPIRY_MS) {
    throw new UsageError(`--expires-in must be a positive duration such as 90m, 24h or 7d (at most 3650d), got "${expiresIn}"`);
  }
  return new Date(Date.now() + ms);
}

const describe = (revocation: { reason: string; expiresAt: Date | undefined }) => ({
  reason: revocation.reason,
  expiresAt: revocation.expiresAt?.toISOString() ?? null,
});

async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<unknown> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        issuer: { type: 'string' },
        subject: { type: 'string' },
        reason: { type: 'string' },
        'expires-in': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === 'help') return undefined;

  const name = positionals[0] === 'pool' ? `pool ${positionals[1] ?? ''}`.trim() : (positionals[0] ?? '');
  const spec = COMMANDS[name];
  if (name === 'pool') throw new UsageError('pool needs a subcommand: list, add, remove or set');
  if (!spec) throw new UsageError(name ? `unknown command "${name}"` : 'a command is required');
  const instanceIds = positionals.slice(name.split(' ').length);

  const options: Partial<Record<Option, string>> = {
    issuer: values.issuer,
    subject: values.subject,
    reason: values.reason,
    'expires-in': values['expires-in'],
  };
  for (const option of spec.required) {
    if (!options[option]?.trim()) throw new UsageError(`${name} requires --${option}`);
  }
  const allowed = new Set<Option>([...spec.required, ...(spec.optional ?? [])]);
  for (const [option, given] of Object.entries(options)) {
    if (given !== undefined && !allowed.has(option as Option)) throw new UsageError(`${name} does not take --${option}`);
  }
  if (spec.ids === 'some' && instanceIds.length === 0) throw new UsageError(`${name} requires at least one instance ID`);
  if (spec.ids === 'none' && instanceIds.length > 0) throw new UsageError(`${name} takes no instance IDs, got "${instanceIds[0]}"`);

  const tableName = env.TABLE_NAME?.trim();
  if (!tableName) throw new UsageError('TABLE_NAME must name the DynamoDB table');
  const client = createDocumentClient({
    ...(env.DYNAMODB_ENDPOINT?.trim() && { endpoint: env.DYNAMODB_ENDPOINT.trim() }),
    ...(env.AWS_REGION?.trim() && { region: env.AWS_REGION.trim() }),
    // An operator's machine may be far from the region: the request path's sub-second timeouts would be too tight.
    timeouts: { connectionMs: 3000, requestMs: 10_000 },
  });
  try {
    return await spec.run({
      options,
      instanceIds,
      entitlements: new DynamoEntitlementStore(client, tableName),
      revocations: new DynamoRevocationStore({ client, tableName }),
    });
  } catch (error) {
    if (error instanceof Error && error.name === 'ResourceNotFoundException') {
      throw new Error(`table "${tableName}" does not exist (check TABLE_NAME, DYNAMODB_ENDPOINT and AWS_REGION)`, { cause: error });
    }
    throw error;
  } finally {
    client.destroy();
  }
}

run(process.argv.slice(2), process.env).then(
  (result) => {
    console.log(result === undefined ? USAGE : JSON.stringify(result, null, 2));
  },
  (error: unknown) => {
    // RangeError: an argument the stores refuse (instance ID format, empty reason).
    if (error instanceof UsageError || error instanceof RangeError) {
      console.error(`grants: ${error.message}\nRun "npm run grants -- --help" for usage.`);
      process.exitCode = 2;
    } else {
      console.error(`grants: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
      process.exitCode = 1;
    }
  },
);
