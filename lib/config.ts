import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { issuerListSchema, type IssuerConfig } from './auth/issuer-config';
import { LOCAL } from './local-defaults';
import { parseRate, type Rate } from './rate';

/**
 * The service's whole configuration, parsed once at cold start from the environment.
 * A missing or malformed variable throws a ConfigError naming it, so a bad deploy fails on its first
 * invocation instead of serving with a half-read setting. Only `STAGE=local` may fall back to the
 * embedded local defaults (`lib/local-defaults.ts`); every other stage must be configured explicitly.
 */
export interface Config {
  stage: string;
  isLocal: boolean;
  issuers: IssuerConfig[];
  entitlementsFile: string | undefined;
  tableName: string;
  dynamodbEndpoint: string | undefined;
  tencent: TencentConfig;
  upstreamRateLimit: Rate;
  /** The per-container upstream limit while DynamoDB is unavailable (fleet overshoot ≤ containers × this). */
  degradedUpstreamRateLimit: Rate;
  /** Spacing added to each upstream slot's reuse, absorbing jitter between reserving a slot and the call arriving. */
  upstreamGuardMarginMs: number;
  /** Upstream batch size: requests for more instances are split into calls of at most this many. */
  upstreamBatchSize: number;
  /** How long a fresh token may be handed again to the same caller (0 disables reuse). */
  tokenReuseSeconds: number;
  rateLimitPerCaller: Rate;
  renewalHoursDefault: number;
  renewalHoursMax: number;
  maxInstancesPerRequest: number;
  corsAllowedOrigins: string[];
}

export interface TencentConfig {
  endpoint: URL;
  region: string | undefined;
  timeoutMs: number;
  /** Exactly one credential source: a Secrets Manager ARN (deployed) or inline keys (`local` only). */
  credentials: { secretArn: string } | { secretId: string; secretKey: string };
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Every variable the configuration reads. A deploy must pass each one through (serverless.yml), except
 * the inline keys, which only `STAGE=local` accepts; a test holds the package to that.
 */
export const CONFIG_VARIABLES = [
  'STAGE',
  'AUTH_ISSUERS',
  'ENTITLEMENTS_FILE',
  'TABLE_NAME',
  'DYNAMODB_ENDPOINT',
  'TENCENTCLOUD_SECRET_ARN',
  'TENCENTCLOUD_SECRET_ID',
  'TENCENTCLOUD_SECRET_KEY',
  'TENCENTCLOUD_REGION',
  'GS_ENDPOINT',
  'UPSTREAM_TIMEOUT_MS',
  'UPSTREAM_RATE_LIMIT',
  'DEGRADED_UPSTREAM_RATE_LIMIT',
  'UPSTREAM_GUARD_MARGIN_MS',
  'UPSTREAM_BATCH_SIZE',
  'TOKEN_REUSE_SECONDS',
  'RATE_LIMIT_PER_CALLER',
  'RENEWAL_HOURS_DEFAULT',
  'RENEWAL_HOURS_MAX',
  'MAX_INSTANCES_PER_REQUEST',
  'CORS_ALLOWED_ORIGINS',
] as const;
export const LOCAL_ONLY_VARIABLES = ['TENCENTCLOUD_SECRET_ID', 'TENCENTCLOUD_SECRET_KEY'] as const satisfies readonly ConfigVariable[];
type ConfigVariable = (typeof CONFIG_VARIABLES)[number];

const positiveInt = (variable: string, raw: string, min: number, max: number): number => {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(variable, `must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(variable, `must be between ${min} and ${max}, got ${value}`);
  return value;
};

const originSchema = z
  .string()
  .regex(/^https?:\/\/[^/\s,]+$/, 'an exact origin such as https://app.example.com (scheme and host, no path)');

function parseJsonVariable<T>(variable: string, raw: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError(variable, 'is not valid JSON');
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new ConfigError(variable, `is invalid: ${formatIssues(result.error)}`);
  return result.data;
}

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') + ': ' : ''}${issue.message}`)
    .join('; ');
}

function parseEndpoint(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('GS_ENDPOINT', `is not a URL: "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('GS_ENDPOINT', 'must use http or https');
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new ConfigError('GS_ENDPOINT', 'must be a base URL with no path, query or credentials');
  }
  return url;
}

export function loadConfig(env: Env = process.env): Config {
  const stage = env.STAGE?.trim();
  if (!stage) throw new ConfigError('STAGE', 'is required (use "local" for the embedded local defaults)');
  const isLocal = stage === 'local';

  /** A variable's value, else its local default when STAGE=local, else a ConfigError. */
  const setting = (variable: ConfigVariable, localDefault?: string): string => {
    const value = env[variable];
    if (value !== undefined && value.trim() !== '') return value;
    if (isLocal && localDefault !== undefined) return localDefault;
    throw new ConfigError(variable, `is required when STAGE=${stage}`);
  };
  const optional = (variable: ConfigVariable): string | undefined => {
    const value = env[variable];
    return value !== undefined && value.trim() !== '' ? value.trim() : undefined;
  };

  const issuers = parseJsonVariable('AUTH_ISSUERS', setting('AUTH_ISSUERS', JSON.stringify(LOCAL.issuers)), issuerListSchema);
  // Keys fetched over plain HTTP can be swapped by anyone on the path, and they decide who gets tokens.
  const plainHttp = isLocal ? undefined : issuers.find((issuer) => issuer.jwksUri?.startsWith('http:'));
  if (plainHttp) throw new ConfigError('AUTH_ISSUERS', `issuer "${plainHttp.name}" has an http jwksUri; outside STAGE=local it must be https`);

  const entitlementsFile = optional('ENTITLEMENTS_FILE') ?? (isLocal ? LOCAL.entitlementsFile : undefined);
  // The table always holds revocations and the fleet-wide rate-limit counters; grants too unless ENTITLEMENTS_FILE is set.
  const tableName = setting('TABLE_NAME', LOCAL.tableName).trim();
  const dynamodbEndpoint = optional('DYNAMODB_ENDPOINT') ?? (isLocal ? LOCAL.dynamodbEndpoint : undefined);

  const secretArn = optional('TENCENTCLOUD_SECRET_ARN');
  let credentials: TencentConfig['credentials'];
  if (secretArn) {
    credentials = { secretArn };
  } else if (isLocal) {
    credentials = {
      secretId: setting('TENCENTCLOUD_SECRET_ID', LOCAL.secretId),
      secretKey: setting('TENCENTCLOUD_SECRET_KEY', LOCAL.secretKey),
    };
  } else {
    if (optional('TENCENTCLOUD_SECRET_ID') || optional('TENCENTCLOUD_SECRET_KEY')) {
      throw new ConfigError(
        'TENCENTCLOUD_SECRET_ID',
        `is for STAGE=local only; STAGE=${stage} reads the keys from TENCENTCLOUD_SECRET_ARN`,
      );
    }
    throw new ConfigError('TENCENTCLOUD_SECRET_ARN', `is required when STAGE=${stage}`);
  }

  const endpoint = parseEndpoint(optional('GS_ENDPOINT') ?? (isLocal ? LOCAL.gsEndpoint : 'https://gs.tencentcloudapi.com'));

  const renewalHoursMax = positiveInt('RENEWAL_HOURS_MAX', optional('RENEWAL_HOURS_MAX') ?? '12', 1, 720);
  const renewalHoursDefault = positiveInt('RENEWAL_HOURS_DEFAULT', optional('RENEWAL_HOURS_DEFAULT') ?? '2', 1, 720);
  if (renewalHoursDefault > renewalHoursMax) {
    throw new ConfigError('RENEWAL_HOURS_DEFAULT', `(${renewalHoursDefault}) must not exceed RENEWAL_HOURS_MAX (${renewalHoursMax})`);
  }

  const corsRaw = optional('CORS_ALLOWED_ORIGINS') ?? (isLocal ? LOCAL.corsAllowedOrigins.join(',') : '');
  const corsAllowedOrigins = corsRaw
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of corsAllowedOrigins) {
    const result = originSchema.safeParse(origin);
    if (!result.success) throw new ConfigError('CORS_ALLOWED_ORIGINS', `has "${origin}", which is not ${formatIssues(result.error)}`);
  }

  return {
    stage,
    isLocal,
    issuers,
    entitlementsFile,
    tableName,
    dynamodbEndpoint,
    tencent: {
      endpoint,
      region: optional('TENCENTCLOUD_REGION'),
      timeoutMs: positiveInt('UPSTREAM_TIMEOUT_MS', optional('UPSTREAM_TIMEOUT_MS') ?? '3000', 100, 29000),
      credentials,
    },
    upstreamRateLimit: rateVariable('UPSTREAM_RATE_LIMIT', optional('UPSTREAM_RATE_LIMIT') ?? '20/1s'),
    degradedUpstreamRateLimit: rateVariable('DEGRADED_UPSTREAM_RATE_LIMIT', optional('DEGRADED_UPSTREAM_RATE_LIMIT') ?? '1/1s'),
    upstreamGuardMarginMs: positiveInt('UPSTREAM_GUARD_MARGIN_MS', optional('UPSTREAM_GUARD_MARGIN_MS') ?? '75', 15, 5000),
    upstreamBatchSize: positiveInt('UPSTREAM_BATCH_SIZE', optional('UPSTREAM_BATCH_SIZE') ?? '50', 1, 1000),
    tokenReuseSeconds: positiveInt('TOKEN_REUSE_SECONDS', optional('TOKEN_REUSE_SECONDS') ?? '30', 0, 3600),
    rateLimitPerCaller: rateVariable('RATE_LIMIT_PER_CALLER', optional('RATE_LIMIT_PER_CALLER') ?? '30/60s'),
    renewalHoursDefault,
    renewalHoursMax,
    maxInstancesPerRequest: positiveInt('MAX_INSTANCES_PER_REQUEST', optional('MAX_INSTANCES_PER_REQUEST') ?? '50', 1, 1000),
    corsAllowedOrigins,
  };
}

function rateVariable(variable: string, raw: string): Rate {
  try {
    return parseRate(raw);
  } catch (error) {
    throw new ConfigError(variable, (error as Error).message);
  }
}

/** Reads a JSON file named by a variable, reporting the variable when the file is missing or unreadable. */
export function readJsonFile(variable: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(variable, `names "${path}", which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(variable, `names "${path}", which is not valid JSON`);
  }
}
