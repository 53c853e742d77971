import { createAuthenticator } from './auth/authenticator';
import type { Config } from './config';
import { FileEntitlementStore } from './entitlements/file-store';
import type { EntitlementStore } from './entitlements/store';
import { createStreamTokenService, type StreamTokenService } from './stream-token-service';
import { logger } from './logger';
import { createStreamTokenClient } from './tencent/stream-token-client';

export interface Container {
  service: StreamTokenService;
}

/**
 * The composition root: builds every client once per Lambda container (JWKS sets, the Tencent
 * client with its keep-alive agent, the entitlement store) and wires them into the service.
 */
export function createContainer(config: Config): Container {
  const service = createStreamTokenService({
    authenticator: createAuthenticator(config.issuers),
    entitlements: createEntitlementStore(config),
    upstream: createStreamTokenClient(config.tencent, { logger }),
    policy: {
      renewalHoursDefault: config.renewalHoursDefault,
      renewalHoursMax: config.renewalHoursMax,
      maxInstancesPerRequest: config.maxInstancesPerRequest,
    },
  });
  return { service };
}

function createEntitlementStore(config: Config): EntitlementStore {
  if (config.entitlementsFile) return FileEntitlementStore.fromFile(config.entitlementsFile);
  throw new Error('TABLE_NAME-backed entitlements are not wired yet');
}
