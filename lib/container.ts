import { createAuthenticator } from './auth/authenticator';
import type { Config } from './config';
import { DynamoEntitlementStore } from './entitlements/dynamodb-store';
import { FileEntitlementStore } from './entitlements/file-store';
import { logger } from './logger';
import { createCallerQuota, type IssuerLimits } from './ratelimit/caller-quota';
import { createUpstreamGuard } from './ratelimit/upstream-guard';
import { DynamoRevocationStore } from './revocations';
import { createDocumentClient } from './state/table';
import { createStreamTokenService, type StreamTokenService } from './stream-token-service';
import { createStreamTokenClient } from './tencent/stream-token-client';
import { createTokenReuse } from './tencent/token-reuse';

export interface Container {
  service: StreamTokenService;
}

/**
 * The composition root: builds every client once per Lambda container (the JWKS sets, one DynamoDB
 * client, the Tencent client with its keep-alive agent) and wires them into the service.
 */
export function createContainer(config: Config): Container {
  const dynamo = createDocumentClient({ endpoint: config.dynamodbEndpoint });
  const { tableName } = config;
  const guard = createUpstreamGuard({
    client: dynamo,
    tableName,
    rate: config.upstreamRateLimit,
    marginMs: config.upstreamGuardMarginMs,
    degraded: { perContainer: config.degradedUpstreamRateLimit },
    logger,
  });
  const upstream = createStreamTokenClient(config.tencent, { logger, acquireSlot: (deadline) => guard.acquire(deadline) });
  const limits = new Map<string, IssuerLimits>(config.issuers.map((issuer) => [issuer.name, issuer.rateLimit ?? {}]));

  const service = createStreamTokenService({
    authenticator: createAuthenticator(config.issuers),
    // Stale-if-error on the request path: a DynamoDB outage must not take the service down (see each store).
    revocations: new DynamoRevocationStore({ client: dynamo, tableName, degraded: { logger } }),
    quota: createCallerQuota({ client: dynamo, tableName, defaultPerCaller: config.rateLimitPerCaller, logger }),
    issuerLimits: (issuerName) => limits.get(issuerName) ?? {},
    entitlements: config.entitlementsFile
      ? FileEntitlementStore.fromFile(config.entitlementsFile)
      : new DynamoEntitlementStore(dynamo, tableName, { degraded: { logger } }),
    upstream: createTokenReuse(upstream, { windowMs: config.tokenReuseSeconds * 1000, batchSize: config.upstreamBatchSize }),
    policy: {
      renewalHoursDefault: config.renewalHoursDefault,
      renewalHoursMax: config.renewalHoursMax,
      maxInstancesPerRequest: config.maxInstancesPerRequest,
    },
  });
  return { service };
}
