import { parseBeijingTime } from '../beijing-time';
import type { StreamTokenClient, StreamTokenRequest, StreamTokenResult, UpstreamStreamToken } from './types';

export interface TokenReuseOptions {
  /** How long a freshly issued token may be handed out again to the same caller (0 turns reuse off). */
  windowMs: number;
  /** Upstream batch size: larger requests are split into calls of at most this many instances. */
  batchSize: number;
  now?: () => number;
  /** Bound on remembered tokens per container; the oldest are forgotten first. */
  maxEntries?: number;
}

export interface ReusingResult extends StreamTokenResult {
  /** How many of the returned tokens came from the reuse window instead of the upstream. */
  reusedCount: number;
  /** Upstream calls this request started itself (0 when every token was reused or joined an identical call in flight). */
  upstreamCalls: number;
}

/**
 * Keeps retry storms and duplicate clicks away from the upstream's 20 requests/s, per container:
 * - identical concurrent requests (same caller, instances, device, hours) share one upstream call;
 * - a token issued moments ago for the same caller, instance, device and hours is handed out again,
 *   unchanged (same `ExpireTime`), for `windowMs` but never past 10 % of the token's life, so a reused
 *   token always keeps at least 90 % of the lifetime the caller asked for;
 * - requests for more instances than the upstream batch size are split into parallel batches.
 * Entries are keyed by caller: one caller never receives a token issued to another.
 */
export function createTokenReuse(upstream: StreamTokenClient, options: TokenReuseOptions) {
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 10_000;
  const inFlight = new Map<string, Promise<StreamTokenResult>>();
  const recent = new Map<string, { token: UpstreamStreamToken; reuseUntil: number }>();

  const tokenKey = (callerKey: string, request: StreamTokenRequest, instanceId: string) =>
    JSON.stringify([callerKey, instanceId, request.deviceId, request.renewalHours]);

  function remember(callerKey: string, request: StreamTokenRequest, tokens: readonly UpstreamStreamToken[]): void {
    if (options.windowMs <= 0) return;
    const issuedAt = now();
    for (const token of tokens) {
      const expiresAt = parseBeijingTime(token.ExpireTime)?.getTime();
      if (expiresAt === undefined || expiresAt <= issuedAt) continue;
      const reuseFor = Math.min(options.windowMs, (expiresAt - issuedAt) * 0.1);
      const key = tokenKey(callerKey, request, token.InstanceId);
      recent.delete(key);
      recent.set(key, { token, reuseUntil: issuedAt + reuseFor });
    }
    evict(issuedAt);
  }

  function evict(at: number): void {
    if (recent.size <= maxEntries) return;
    for (const [key, entry] of recent) if (entry.reuseUntil <= at) recent.delete(key);
    // Map iteration follows insertion order, so the first keys are the oldest.
    for (const key of recent.keys()) {
      if (recent.size <= maxEntries) break;
      recent.delete(key);
    }
  }

  /** One upstream call for a batch, shared with any identical call already in flight; its tokens are remembered once. */
  function sharedCall(callerKey: string, request: StreamTokenRequest): { promise: Promise<StreamTokenResult>; started: boolean } {
    const flightKey = JSON.stringify([callerKey, [...request.instanceIds].sort(), request.deviceId, request.renewalHours]);
    const existing = inFlight.get(flightKey);
    if (existing) return { promise: existing, started: false };
    const promise = upstream
      .createStreamTokens(request)
      .then((result) => {
        remember(callerKey, request, result.tokens);
        return result;
      })
      .finally(() => inFlight.delete(flightKey));
    inFlight.set(flightKey, promise);
    return { promise, started: true };
  }

  return {
    async createStreamTokens(callerKey: string, request: StreamTokenRequest): Promise<ReusingResult> {
      const at = now();
      const reused: UpstreamStreamToken[] = [];
      const missing: string[] = [];
      for (const instanceId of request.instanceIds) {
        const entry = recent.get(tokenKey(callerKey, request, instanceId));
        if (entry && entry.reuseUntil > at) reused.push(entry.token);
        else missing.push(instanceId);
      }
      if (missing.length === 0) {
        return { tokens: reused, requestId: '', attempts: 0, reusedCount: reused.length, upstreamCalls: 0 };
      }

      const batches: string[][] = [];
      for (let i = 0; i < missing.length; i += options.batchSize) batches.push(missing.slice(i, i + options.batchSize));
      const calls = batches.map((instanceIds) => sharedCall(callerKey, { ...request, instanceIds }));
      const results = await Promise.all(calls.map((call) => call.promise));
      const fresh = results.flatMap((result) => result.tokens);
      return {
        tokens: [...reused, ...fresh],
        requestId: results.map((result) => result.requestId).join(','),
        attempts: results.reduce((sum, result) => sum + result.attempts, 0),
        reusedCount: reused.length,
        upstreamCalls: calls.filter((call) => call.started).length,
      };
    },
  };
}

export type TokenReuse = ReturnType<typeof createTokenReuse>;
