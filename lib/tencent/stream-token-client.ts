/**
 * The one upstream call: CreateCloudPhoneInstancesStreamToken (gs, 2019-11-18) through the SDK's generic
 * CommonClient, inside a single time budget (`UPSTREAM_TIMEOUT_MS`, retries included).
 *
 * Outcome → error (the caller-facing text is always the error class's fixed text; upstream codes, RequestIds
 * and messages go only into `cause`, an UpstreamCallError, for logs):
 * - `RequestLimitExceeded[.*]`: retried with jittered backoff (≤ 4 retries) → UpstreamBusyError 503, Retry-After 1.
 * - `InternalError[.*]`, `ServiceUnavailable`, HTTP 5xx, network failures (refused, reset): ≤ 2 retries → UpstreamError 502.
 * - Every other API error code (AuthFailure.*, Invalid*, Missing*, Unknown*, FailedOperation, LimitExceeded,
 *   ResourceNotFound, Unauthorized*, Unsupported*...), HTTP 4xx and other non-200 statuses: UpstreamError 502, no retry.
 * - A 200 that is not JSON, not the envelope, or not the documented `Tokens` shape: UpstreamError 502, no retry.
 * - An attempt cut off by the budget: UpstreamTimeoutError 504. A retry is only started when its backoff plus
 *   MIN_ATTEMPT_MS still fits in the budget; otherwise the last failure's error is thrown as listed above.
 */
import { lookup } from 'node:dns';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction } from 'node:net';
import { CommonClient } from 'tencentcloud-sdk-nodejs-common';
import { z } from 'zod';
import type { TencentConfig } from '../config';
import { InternalError, UpstreamBusyError, UpstreamError, UpstreamTimeoutError, type ServiceError } from '../errors';
import { secretsManagerCredentials, staticCredentials, type CredentialProvider, type WarnLogger } from './credentials';
import type { StreamTokenClient, StreamTokenRequest, StreamTokenResult, UpstreamStreamToken } from './types';

export const GS_HOST = 'gs.tencentcloudapi.com';
export const GS_ACTION = 'CreateCloudPhoneInstancesStreamToken';
export const GS_VERSION = '2019-11-18';

/** Do not start an attempt with less time than this left in the budget. */
const MIN_ATTEMPT_MS = 100;
/**
 * A wait for an upstream slot must leave the call this much of the budget (at least MIN_ATTEMPT_MS):
 * a slot granted at the deadline would spend a unit of the shared quota on a call that can only time
 * out, and the caller would get 504 where 503 with Retry-After tells it the truth.
 */
const ATTEMPT_RESERVE_FRACTION = 0.25;
const RETRY_POLICY = {
  'rate-limited': { maxRetries: 4, baseDelayMs: 100 },
  transient: { maxRetries: 2, baseDelayMs: 50 },
} as const;

export interface StreamTokenClientOptions {
  /** Default: from `config.credentials` (Secrets Manager when an ARN is set, else the inline local keys). */
  credentials?: CredentialProvider;
  logger?: WarnLogger;
  /**
   * Called before every attempt, retries included, with the latest moment (epoch ms) a slot may be
   * granted and still leave the call its reserve: the shared upstream quota guard waits here for a
   * slot or throws UpstreamBusyError.
   */
  acquireSlot?: (deadlineMs: number) => Promise<void>;
  /** Test seams for the backoff. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

// ---------------------------------------------------------------------------------------------------------------
// Connection: the SDK signs with the endpoint's first label as the service, so it must always see a `gs.` host.

export interface GsConnection {
  /** Host (and port) handed to CommonClient; its first label is the signing service. */
  endpoint: string;
  protocol: 'http://' | 'https://';
  /** Keep-alive agent; for a non-`gs.` endpoint it also routes `gs.tencentcloudapi.com` to the configured host. */
  agent: HttpAgent;
}

/** A socket `lookup` that resolves whatever name it is asked for to `hostname` (an IP literal resolves to itself). */
function routeTo(hostname: string): LookupFunction {
  return (_name, lookupOptions, callback) => lookup(hostname, lookupOptions, callback);
}

export function gsConnection(url: URL): GsConnection {
  const https = url.protocol === 'https:';
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const direct = hostname.toLowerCase().startsWith('gs.');
  const agentOptions = {
    keepAlive: true,
    // The SDK's URL names gs.tencentcloudapi.com; connect to the configured host instead. (TLS still verifies
    // the name in the URL, which is right for a private address in front of Tencent's endpoint.)
    ...(direct ? {} : { lookup: routeTo(hostname) }),
  };
  return {
    endpoint: (direct ? hostname : GS_HOST) + (url.port ? `:${url.port}` : ''),
    protocol: https ? 'https://' : 'http://',
    agent: https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Response shape: exactly the documented fields; zod's default stripping is the allow-list.

const tokenSchema = z.object({
  InstanceId: z.string().min(1),
  DeviceId: z.string(),
  Token: z.string().min(1),
  ExpireTime: z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/),
  SignalServer: z.object({ TCPAddr: z.string(), WSAddr: z.string(), WSSAddr: z.string() }),
  CoturnServers: z.array(z.object({ Addr: z.string(), ISP: z.number().int() })),
}) satisfies z.ZodType<UpstreamStreamToken>;

const responseSchema = z.object({ Tokens: z.array(tokenSchema), RequestId: z.string().min(1) });

// ---------------------------------------------------------------------------------------------------------------
// Failures

export type FailureKind = 'rate-limited' | 'transient' | 'refused' | 'malformed' | 'timeout';

/** What went wrong in one attempt, in terms safe for logs (no tokens, no keys). */
export interface UpstreamFailure {
  kind: FailureKind;
  /** How it was observed. */
  source: 'api-error' | 'http-status' | 'network' | 'response-shape' | 'budget';
  code?: string;
  httpCode?: number;
  requestId?: string;
  traceId?: string;
  /** The upstream's or transport's own words, truncated; for logs only. */
  upstreamMessage?: string;
}

/** The `cause` of every error this client throws; the thrown error's own message stays fixed text. */
export class UpstreamCallError extends Error {
  constructor(
    readonly failure: UpstreamFailure,
    readonly attempts: number,
  ) {
    const parts = [failure.kind, failure.source, failure.code, failure.httpCode, failure.requestId && `requestId ${failure.requestId}`];
    super(`${GS_ACTION} failed after ${attempts} attempt(s): ${parts.filter(Boolean).join(', ')}`);
    this.name = 'UpstreamCallError';
  }
}

const truncate = (text: string): string => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

interface SdkException extends Error {
  code?: unknown;
  httpCode?: unknown;
  requestId?: unknown;
  traceId?: unknown;
}

/** TencentCloudSDKHttpException, recognised by shape: an esbuild bundle may load the SDK's ES build, so no instanceof. */
function isSdkException(error: unknown): error is SdkException {
  return error instanceof Error && typeof (error as { getRequestId?: unknown }).getRequestId === 'function';
}

const optionalString = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

export function classifyApiCode(code: string): FailureKind {
  if (code === 'RequestLimitExceeded' || code.startsWith('RequestLimitExceeded.')) return 'rate-limited';
  if (code === 'InternalError' || code.startsWith('InternalError.') || code === 'ServiceUnavailable') return 'transient';
  return 'refused';
}

/** What `CommonClient.request` rejected with (see abstract_client.js), as a failure. */
function classify(error: unknown, budgetSpent: boolean): UpstreamFailure {
  if (budgetSpent) return { kind: 'timeout', source: 'budget' };
  if (isSdkException(error)) {
    const ids = {
      requestId: optionalString(error.requestId),
      traceId: optionalString(error.traceId),
      upstreamMessage: truncate(error.message),
    };
    // An error envelope sets `code` (even to undefined); a non-200 sets `httpCode`; a transport failure neither.
    if (Object.hasOwn(error, 'code')) {
      const code = optionalString(error.code);
      return code ? { kind: classifyApiCode(code), source: 'api-error', code, ...ids } : { kind: 'malformed', source: 'api-error', ...ids };
    }
    if (typeof error.httpCode === 'number') {
      return { kind: error.httpCode >= 500 ? 'transient' : 'refused', source: 'http-status', httpCode: error.httpCode, ...ids };
    }
    return { kind: 'transient', source: 'network', ...ids };
  }
  // Raw errors escape parseResponse: node-fetch's FetchError for a body that is not JSON ('invalid-json') or that
  // broke off mid-way ('system'), or a TypeError for JSON without `Response`. Only name and type are kept: a JSON
  // parse message quotes the body.
  const { name, type } = (error ?? {}) as { name?: unknown; type?: unknown };
  const upstreamMessage = [name, type].filter((part) => typeof part === 'string').join(' ') || undefined;
  if (name === 'FetchError' && type === 'system') return { kind: 'transient', source: 'network', upstreamMessage };
  return { kind: 'malformed', source: 'response-shape', upstreamMessage };
}

function toServiceError(failure: UpstreamFailure, attempts: number): ServiceError {
  const cause = new UpstreamCallError(failure, attempts);
  switch (failure.kind) {
    case 'rate-limited':
      return new UpstreamBusyError(1, { cause });
    case 'timeout':
      return new UpstreamTimeoutError({ cause });
    default:
      return new UpstreamError({ cause });
  }
}

// ---------------------------------------------------------------------------------------------------------------

function defaultCredentials(config: TencentConfig): CredentialProvider {
  return 'secretArn' in config.credentials
    ? secretsManagerCredentials(config.credentials.secretArn)
    : staticCredentials(config.credentials.secretId, config.credentials.secretKey);
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Create once per container: it owns the keep-alive agent and the SDK client. */
export function createStreamTokenClient(config: TencentConfig, options: StreamTokenClientOptions = {}): StreamTokenClient {
  const credentials = options.credentials ?? defaultCredentials(config);
  const sleep = options.sleep ?? realSleep;
  const random = options.random ?? Math.random;
  const connection = gsConnection(config.endpoint);
  const client = new CommonClient(connection.endpoint, GS_VERSION, {
    credential: credentials,
    region: config.region,
    profile: {
      httpProfile: {
        protocol: connection.protocol,
        agent: connection.agent,
        // Seconds; the budget, so the SDK's 60 s default never applies. Each attempt also gets its own signal.
        reqTimeout: config.timeoutMs / 1000,
      },
    },
  });

  return {
    async createStreamTokens(request: StreamTokenRequest): Promise<StreamTokenResult> {
      // Resolved up front (the provider caches, so the SDK's own call is free): inside the SDK a credentials
      // failure would look like a network failure and be retried.
      try {
        await credentials.getCredential();
      } catch (error) {
        throw new InternalError({ cause: error });
      }
      const body = { InstanceIds: request.instanceIds, DeviceId: request.deviceId, RenewalTime: request.renewalHours };
      const deadline = Date.now() + config.timeoutMs;
      const attemptReserveMs = Math.max(MIN_ATTEMPT_MS, config.timeoutMs * ATTEMPT_RESERVE_FRACTION);
      const retries = { 'rate-limited': 0, transient: 0 };

      for (let attempt = 1; ; attempt++) {
        await options.acquireSlot?.(deadline - attemptReserveMs);
        const signal = AbortSignal.timeout(Math.max(1, Math.ceil(deadline - Date.now())));
        let failure: UpstreamFailure;
        try {
          const response: unknown = await client.request(GS_ACTION, body, { signal });
          const parsed = responseSchema.safeParse(response);
          if (parsed.success) return { tokens: parsed.data.Tokens, requestId: parsed.data.RequestId, attempts: attempt };
          failure = {
            kind: 'malformed',
            source: 'response-shape',
            requestId: optionalString((response as { RequestId?: unknown } | null)?.RequestId),
            // Paths and issue codes only: a message could quote a value, and values may be tokens.
            upstreamMessage: truncate(parsed.error.issues.map((issue) => `${issue.path.map(String).join('.')}: ${issue.code}`).join('; ')),
          };
        } catch (error) {
          failure = classify(error, signal.aborted || Date.now() >= deadline);
        }

        const kind = failure.kind;
        if (kind === 'rate-limited' || kind === 'transient') {
          const policy = RETRY_POLICY[kind];
          const retry = retries[kind] + 1;
          // Equal jitter: at least half the exponential step, so a rate-limited retry really waits.
          const delayMs = Math.round(policy.baseDelayMs * 2 ** (retry - 1) * (0.5 + random() / 2));
          if (retry <= policy.maxRetries && deadline - Date.now() - delayMs >= MIN_ATTEMPT_MS) {
            retries[kind] = retry;
            options.logger?.warn('Retrying the stream-token call', {
              attempt,
              delayMs,
              kind,
              source: failure.source,
              code: failure.code,
              httpCode: failure.httpCode,
              requestId: failure.requestId,
            });
            await sleep(delayMs);
            continue;
          }
        }
        throw toServiceError(failure, attempt);
      }
    },
  };
}
