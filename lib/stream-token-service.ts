import type { Authenticator } from './auth/authenticator';
import type { Caller } from './auth/caller';
import { allowedInstanceIds, deniedInstanceIds } from './entitlements/allowed-instances';
import type { EntitlementStore } from './entitlements/store';
import { AccessRevokedError, DeviceNotAllowedError, InstanceNotAllowedError, InvalidRequestError } from './errors';
import { parseJsonBody } from './json-body';
import { rateLimitHeaders, type CallerQuota, type IssuerLimits } from './ratelimit/caller-quota';
import { deviceIdSchema, parseStreamTokensBody } from './request';
import type { RevocationStore } from './revocations';
import { shapeStreamTokensResponse, type StreamTokensResponse } from './stream-tokens-response';
import type { TokenReuse } from './tencent/token-reuse';

export interface TokenPolicy {
  renewalHoursDefault: number;
  renewalHoursMax: number;
  maxInstancesPerRequest: number;
}

export interface StreamTokenServiceDeps {
  authenticator: Authenticator;
  revocations: RevocationStore;
  quota: CallerQuota;
  /** An issuer's `rateLimit` overrides, by registry name. */
  issuerLimits: (issuerName: string) => IssuerLimits;
  entitlements: EntitlementStore;
  /** The upstream behind coalescing, short-lived reuse and the fleet-wide guard. */
  upstream: Pick<TokenReuse, 'createStreamTokens'>;
  policy: TokenPolicy;
  now?: () => Date;
}

/** What the HTTP layer hands over: the request's relevant parts, nothing of the API Gateway event. */
export interface ServiceRequest {
  authorization: string | undefined;
  contentType?: string | undefined;
  body?: string | null | undefined;
  isBase64Encoded?: boolean;
}

/**
 * One request's record, filled in as the work proceeds: the audit line's fields and the headers the
 * response must carry whatever its outcome. It never holds a token or a JWT.
 */
export interface Exchange {
  issuerName?: string;
  subject?: string;
  instanceCount?: number;
  upstreamRequestId?: string;
  upstreamAttempts?: number;
  upstreamLatencyMs?: number;
  /** Tokens served from the reuse window instead of a new upstream call. */
  reusedTokens?: number;
  /** Which revocation refused the caller (the reason stays in the table, for operators). */
  revoked?: 'caller' | 'issuer';
  responseHeaders: Record<string, string>;
}

export function newExchange(): Exchange {
  return { responseHeaders: {} };
}

export interface StreamTokenService {
  vendStreamTokens(request: ServiceRequest, exchange: Exchange): Promise<StreamTokensResponse>;
  listInstances(request: ServiceRequest, exchange: Exchange): Promise<{ instanceIds: string[] }>;
}

export function createStreamTokenService(deps: StreamTokenServiceDeps): StreamTokenService {
  const now = deps.now ?? (() => new Date());

  /**
   * Who is asking, and may they ask now: the revocation check comes first, then the caller's quota is
   * counted, before any request parsing or entitlement lookup costs anything. Unauthenticated requests
   * never reach the quota, so a flood of bad tokens cannot spend a real caller's allowance.
   */
  async function admit(request: ServiceRequest, exchange: Exchange): Promise<Caller> {
    const caller = await deps.authenticator.authenticate(request.authorization);
    exchange.issuerName = caller.issuerName;
    exchange.subject = caller.subject;
    const revocation = await deps.revocations.check(caller.issuer, caller.subject);
    if (revocation) {
      exchange.revoked = revocation.scope;
      throw new AccessRevokedError();
    }
    const decision = await deps.quota.consume(caller, deps.issuerLimits(caller.issuerName));
    Object.assign(exchange.responseHeaders, rateLimitHeaders(decision));
    return caller;
  }

  return {
    async vendStreamTokens(request, exchange) {
      const caller = await admit(request, exchange);
      const body = parseStreamTokensBody(
        parseJsonBody(request.contentType, request.body, request.isBase64Encoded ?? false),
        deps.policy,
      );
      const deviceId = resolveDeviceId(body.deviceId, caller);
      const allowed = await allowedInstanceIds(deps.entitlements, caller);
      const instanceIds = body.instanceIds ?? allowed;
      exchange.instanceCount = instanceIds.length;
      if (instanceIds.length === 0) {
        throw new InstanceNotAllowedError([]);
      }
      if (!body.instanceIds && instanceIds.length > deps.policy.maxInstancesPerRequest) {
        throw new InvalidRequestError(
          `The caller may use ${instanceIds.length} instances, more than ${deps.policy.maxInstancesPerRequest} per request: name them in instanceIds`,
        );
      }
      const denied = deniedInstanceIds(instanceIds, allowed);
      if (denied.length > 0) throw new InstanceNotAllowedError(denied);

      const renewalHours = body.renewalHours ?? deps.policy.renewalHoursDefault;
      const started = performance.now();
      const result = await deps.upstream.createStreamTokens(JSON.stringify([caller.issuer, caller.subject]), {
        instanceIds,
        deviceId,
        renewalHours,
      });
      exchange.upstreamLatencyMs = Math.round(performance.now() - started);
      exchange.upstreamRequestId = result.requestId || undefined;
      exchange.upstreamAttempts = result.attempts;
      exchange.reusedTokens = result.reusedCount;
      return shapeStreamTokensResponse({
        requestedInstanceIds: instanceIds,
        deviceId,
        renewalHours,
        upstreamTokens: result.tokens,
        now: now(),
      });
    },

    async listInstances(request, exchange) {
      const caller = await admit(request, exchange);
      const instanceIds = await allowedInstanceIds(deps.entitlements, caller);
      exchange.instanceCount = instanceIds.length;
      return { instanceIds };
    },
  };
}

/**
 * The device the tokens are bound to. A token carrying its issuer's device claim pins the device:
 * the body may repeat it but not change it.
 */
function resolveDeviceId(requested: string | undefined, caller: Caller): string {
  const claimed = caller.deviceId;
  if (claimed !== undefined) {
    if (!deviceIdSchema.safeParse(claimed).success) throw new DeviceNotAllowedError();
    if (requested !== undefined && requested !== claimed) throw new DeviceNotAllowedError();
    return claimed;
  }
  if (requested === undefined) throw new InvalidRequestError('deviceId: required (the token carries no device claim)');
  return requested;
}
