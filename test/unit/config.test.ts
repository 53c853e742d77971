import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../lib/config';
import { LOCAL } from '../../lib/local-defaults';

const ISSUERS = JSON.stringify([
  {
    name: 'acme',
    issuer: 'https://login.acme.example/',
    audiences: ['cloudphone-stream-api'],
    jwksUri: 'https://login.acme.example/.well-known/jwks.json',
    algorithms: ['RS256', 'ES256'],
    rateLimit: { perCaller: '10/60s', perIssuer: '600/60s' },
  },
]);

const production = {
  STAGE: 'prod',
  AUTH_ISSUERS: ISSUERS,
  TABLE_NAME: 'stream-tokens-prod',
  TENCENTCLOUD_SECRET_ARN: 'arn:aws:secretsmanager:ap-southeast-1:123456789012:secret:tencent-abc',
};

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('loadConfig', () => {
  it('fills every local default under STAGE=local', () => {
    const config = loadConfig({ STAGE: 'local' });
    expect(config.isLocal).toBe(true);
    expect(config.issuers[0]?.issuer).toBe(LOCAL.devIssuerUrl);
    expect(config.entitlementsFile).toBe(LOCAL.entitlementsFile);
    expect(config.tencent.endpoint.href).toBe(`${LOCAL.gsEndpoint}/`);
    expect(config.tencent.credentials).toEqual({ secretId: LOCAL.secretId, secretKey: LOCAL.secretKey });
    expect(config.corsAllowedOrigins).toEqual(LOCAL.corsAllowedOrigins);
  });

  it('lets a variable set under STAGE=local replace the embedded default', () => {
    const config = loadConfig({ STAGE: 'local', GS_ENDPOINT: 'http://127.0.0.1:9999', AUTH_ISSUERS: ISSUERS, UPSTREAM_TIMEOUT_MS: '500' });
    expect(config.tencent.endpoint.port).toBe('9999');
    expect(config.issuers[0]?.name).toBe('acme');
    expect(config.tencent.timeoutMs).toBe(500);
  });

  it('applies the contract defaults outside local', () => {
    const config = loadConfig(production);
    expect(config.tencent.endpoint.href).toBe('https://gs.tencentcloudapi.com/');
    expect(config.tencent.timeoutMs).toBe(3000);
    expect(config.upstreamRateLimit).toEqual({ limit: 20, windowSeconds: 1 });
    expect(config.rateLimitPerCaller).toEqual({ limit: 30, windowSeconds: 60 });
    expect([config.renewalHoursDefault, config.renewalHoursMax, config.maxInstancesPerRequest]).toEqual([2, 12, 50]);
    expect(config.corsAllowedOrigins).toEqual([]);
    expect(config.tencent.credentials).toEqual({ secretArn: production.TENCENTCLOUD_SECRET_ARN });
    expect(config.tableName).toBe('stream-tokens-prod');
    expect(config.entitlementsFile).toBeUndefined();
    expect(config.degradedUpstreamRateLimit).toEqual({ limit: 1, windowSeconds: 1 });
    expect([config.tokenReuseSeconds, config.upstreamBatchSize, config.upstreamGuardMarginMs]).toEqual([30, 50, 75]);
    expect(config.issuers[0]?.rateLimit).toEqual({ perCaller: { limit: 10, windowSeconds: 60 }, perIssuer: { limit: 600, windowSeconds: 60 } });
  });

  it.each([
    ['STAGE', {}, 'STAGE'],
    ['AUTH_ISSUERS', { AUTH_ISSUERS: '' }, 'AUTH_ISSUERS is required when STAGE=prod'],
    ['TABLE_NAME, even with a grants file', { TABLE_NAME: '', ENTITLEMENTS_FILE: '/etc/grants.json' }, 'TABLE_NAME is required when STAGE=prod'],
    ['TENCENTCLOUD_SECRET_ARN', { TENCENTCLOUD_SECRET_ARN: '' }, 'TENCENTCLOUD_SECRET_ARN is required when STAGE=prod'],
  ])('refuses to start outside local without %s', (_label, override, message) => {
    const env = { ...production, ...override } as Record<string, string>;
    if (_label === 'STAGE') delete env.STAGE;
    expect(configError(env).message).toContain(message);
  });

  it('refuses inline Tencent keys outside local, naming the variable', () => {
    const error = configError({ ...production, TENCENTCLOUD_SECRET_ARN: '', TENCENTCLOUD_SECRET_ID: 'id-7f3a', TENCENTCLOUD_SECRET_KEY: 'secret-9c1e' });
    expect(error.variable).toBe('TENCENTCLOUD_SECRET_ID');
    expect(error.message).not.toContain('secret-9c1e');
    expect(error.message).not.toContain('id-7f3a');
  });

  it.each([
    ['AUTH_ISSUERS', '[not json', 'is not valid JSON'],
    ['AUTH_ISSUERS', JSON.stringify([{ name: 'x', issuer: 'i', audiences: ['a'], jwksUri: 'https://x/', algorithms: ['HS256'] }]), 'asymmetric'],
    ['AUTH_ISSUERS', JSON.stringify([{ name: 'x', issuer: 'i', audiences: ['a'], jwksUri: 'https://x/', algorithms: ['none'] }]), 'asymmetric'],
    ['AUTH_ISSUERS', JSON.stringify([{ name: 'x', issuer: 'i', audiences: ['a'], algorithms: ['RS256'] }]), 'exactly one of jwksUri or jwks'],
    ['AUTH_ISSUERS', JSON.stringify([{ name: 'x', issuer: 'i', audiences: [], jwksUri: 'https://x/', algorithms: ['RS256'] }]), 'audiences'],
    ['AUTH_ISSUERS', JSON.stringify([{ name: 'x', issuer: 'i', audiences: ['a'], jwksUri: 'http://login.x.example/jwks.json', algorithms: ['RS256'] }]), 'outside STAGE=local it must be https'],
    ['UPSTREAM_RATE_LIMIT', '20 per second', 'N/<seconds>s'],
    ['RATE_LIMIT_PER_CALLER', '0/60s', 'at least 1'],
    ['DEGRADED_UPSTREAM_RATE_LIMIT', '1/0s', 'window of 1 to 86400'],
    ['TOKEN_REUSE_SECONDS', '-5', 'must be an integer'],
    ['UPSTREAM_BATCH_SIZE', '0', 'between 1 and 1000'],
    // A third of the margin is how late a claimed slot may still be used: 0 would refuse every claim.
    ['UPSTREAM_GUARD_MARGIN_MS', '0', 'between 15 and 5000'],
    ['AUTH_ISSUERS', JSON.stringify([{ name: 'x', issuer: 'i', audiences: ['a'], jwksUri: 'https://x/', algorithms: ['RS256'], rateLimit: { perCaller: 'lots' } }]), 'rateLimit.perCaller'],
    ['UPSTREAM_TIMEOUT_MS', 'soon', 'must be an integer'],
    ['UPSTREAM_TIMEOUT_MS', '60000', 'between 100 and 29000'],
    ['RENEWAL_HOURS_MAX', '0', 'between 1 and 720'],
    ['RENEWAL_HOURS_DEFAULT', '13', 'must not exceed RENEWAL_HOURS_MAX'],
    ['MAX_INSTANCES_PER_REQUEST', '-1', 'must be an integer'],
    ['GS_ENDPOINT', 'gs.tencentcloudapi.com', 'is not a URL'],
    ['GS_ENDPOINT', 'ftp://gs.tencentcloudapi.com', 'http or https'],
    ['GS_ENDPOINT', 'https://gs.tencentcloudapi.com/v1', 'base URL'],
    ['CORS_ALLOWED_ORIGINS', 'https://app.example.com/path', 'not an exact origin'],
    ['CORS_ALLOWED_ORIGINS', '*', 'not an exact origin'],
  ])('names %s when it is malformed (%p)', (variable, value, message) => {
    const error = configError({ ...production, [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(`Invalid configuration: ${variable}`);
    expect(error.message).toContain(message);
  });

  it('reads several comma-separated CORS origins', () => {
    expect(loadConfig({ ...production, CORS_ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443' }).corsAllowedOrigins).toEqual([
      'https://a.example',
      'https://b.example:8443',
    ]);
  });
});
