import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Caller } from '../auth/caller';
import { RateLimitedError } from '../errors';
import type { Rate } from '../rate';
import { consoleWarnLogger, Degradation, type DegradationStats, type WarnLogger } from '../state/degraded';
import { keys } from '../state/table';
import { DynamoFixedWindowCounter, MemoryFixedWindowCounter, type Window, type WindowCounter } from './fixed-window';

export type QuotaPolicyName = 'caller' | 'issuer';

export interface QuotaPolicy {
  name: QuotaPolicyName;
  rate: Rate;
}

export interface QuotaState extends QuotaPolicy {
  remaining: number;
  /** Whole seconds until the policy's current window ends. */
  resetSeconds: number;
}

export interface QuotaDecision {
  /** Every policy that applies to the caller: `caller`, then `issuer` when the issuer has a quota. */
  policies: QuotaPolicy[];
  /** The most restrictive state seen (fewest remaining), the one the `RateLimit` field reports. */
  limiting: QuotaState;
  /** True when the decision came from this container's memory because DynamoDB was unavailable. */
  degraded: boolean;
}

/** An issuer's `rateLimit` overrides from `AUTH_ISSUERS`, already parsed. */
export interface IssuerLimits {
  perCaller?: Rate;
  perIssuer?: Rate;
}

export interface CallerQuota {
  /** Counts one request; throws RateLimitedError (with Retry-After and the RateLimit fields) when a quota is spent. */
  consume(caller: Caller, issuerLimits?: IssuerLimits): Promise<QuotaDecision>;
  stats(): DegradationStats;
}

export interface CallerQuotaOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** `RATE_LIMIT_PER_CALLER`, used when the issuer sets no `rateLimit.perCaller`. */
  defaultPerCaller: Rate;
  now?: () => number;
  logger?: WarnLogger;
  /** How long to skip DynamoDB after it failed (default 5 s). */
  probeAfterMs?: number;
}

export type RateLimitHeaderValues = {
  'RateLimit-Policy': string;
  RateLimit: string;
};

/**
 * Renders the IETF httpapi rate-limit fields (structured-field form), e.g.
 * `RateLimit-Policy: "caller";q=30;w=60, "issuer";q=600;w=60` and `RateLimit: "caller";r=29;t=42`.
 */
export function rateLimitHeaders(decision: Pick<QuotaDecision, 'policies' | 'limiting'>): RateLimitHeaderValues {
  const { limiting } = decision;
  return {
    'RateLimit-Policy': decision.policies.map((p) => `"${p.name}";q=${p.rate.limit};w=${p.rate.windowSeconds}`).join(', '),
    RateLimit: `"${limiting.name}";r=${limiting.remaining};t=${limiting.resetSeconds}`,
  };
}

interface Check extends QuotaPolicy {
  key: string;
}

/**
 * Caller quotas shared by the whole fleet: fixed-window counters in DynamoDB, the caller's counter
 * first, then the issuer's. A request the issuer quota refuses gives its caller unit back, so a
 * refused request costs nobody quota; a caller over its own quota never touches the issuer's.
 *
 * Fails open, within bounds: when DynamoDB fails, the same quotas are counted in this container's
 * memory (for `probeAfterMs`, then DynamoDB is tried again) and a warning is logged and counted. With
 * N containers a caller may then get up to N times its quota; the upstream guard, not this quota,
 * is what protects the upstream, so fairness is what is traded for availability here.
 */
export function createCallerQuota(options: CallerQuotaOptions): CallerQuota {
  const now = options.now ?? Date.now;
  const shared = new DynamoFixedWindowCounter({ client: options.client, tableName: options.tableName, now });
  const memory = new MemoryFixedWindowCounter(now);
  const degradation = new Degradation({
    component: 'caller-quota',
    probeAfterMs: options.probeAfterMs ?? 5000,
    now,
    logger: options.logger ?? consoleWarnLogger,
  });

  async function evaluate(counter: WindowCounter, checks: readonly Check[], degraded: boolean): Promise<QuotaDecision> {
    const states: QuotaState[] = [];
    const counted: { check: Check; window: Window }[] = [];
    for (const check of checks) {
      const result = await counter.consume(check.key, check.rate);
      const resetSeconds = Math.max(0, Math.ceil((result.window.endMs - now()) / 1000));
      states.push({
        name: check.name,
        rate: check.rate,
        remaining: Math.max(0, check.rate.limit - result.count),
        resetSeconds,
      });
      if (!result.allowed) {
        // Best effort: a lost refund only costs the caller one unit of its own quota.
        await Promise.all(counted.map(({ check: c, window }) => counter.refund(c.key, c.rate, window).catch(() => undefined)));
        for (const state of states.slice(0, counted.length)) state.remaining += 1;
        const decision = { policies: checks.map(({ name, rate }) => ({ name, rate })), limiting: mostRestrictive(states) };
        throw new RateLimitedError(
          `The ${check.name} quota of ${check.rate.limit} requests per ${check.rate.windowSeconds} s is spent`,
          resetSeconds,
          rateLimitHeaders(decision),
        );
      }
      counted.push({ check, window: result.window });
    }
    return { policies: checks.map(({ name, rate }) => ({ name, rate })), limiting: mostRestrictive(states), degraded };
  }

  return {
    async consume(caller, issuerLimits = {}) {
      const checks: Check[] = [
        {
          name: 'caller',
          rate: issuerLimits.perCaller ?? options.defaultPerCaller,
          key: keys.callerQuota(caller.issuerName, caller.subject),
        },
      ];
      if (issuerLimits.perIssuer) {
        checks.push({ name: 'issuer', rate: issuerLimits.perIssuer, key: keys.issuerQuota(caller.issuerName) });
      }
      if (!degradation.active) {
        try {
          return await evaluate(shared, checks, false);
        } catch (error) {
          if (error instanceof RateLimitedError) throw error;
          degradation.absorb(error);
        }
      }
      degradation.recordFallbackDecision();
      return evaluate(memory, checks, true);
    },
    stats: () => degradation.stats(),
  };
}

/** Fewest remaining wins; on a tie, the one that stays limiting longer. */
function mostRestrictive(states: readonly QuotaState[]): QuotaState {
  return states.reduce((best, state) =>
    state.remaining < best.remaining || (state.remaining === best.remaining && state.resetSeconds > best.resetSeconds)
      ? state
      : best,
  );
}
