/** The slice of a logger the degradation paths need; `@aws-lambda-powertools/logger`'s Logger fits. */
export interface WarnLogger {
  warn(message: string, attributes: Record<string, unknown>): void;
}

export const consoleWarnLogger: WarnLogger = {
  warn: (message, attributes) => console.warn(JSON.stringify({ level: 'WARN', message, ...attributes })),
};

export interface DegradationOptions {
  /** Names the part that degraded in logs (`upstream-guard`, `caller-quota`). */
  component: string;
  /**
   * How long to stay on the in-memory fallback after a DynamoDB failure before trying DynamoDB again.
   * Without it every request would first spend the client's full timeout (up to ~2 s) on a dead table.
   */
  probeAfterMs: number;
  now: () => number;
  logger: WarnLogger;
}

export interface DegradationStats {
  /** DynamoDB failures that switched (or kept) this container on its in-memory fallback. */
  failures: number;
  /** Decisions taken by the in-memory fallback instead of DynamoDB. */
  fallbackDecisions: number;
}

/**
 * A per-container circuit breaker in front of DynamoDB. Each failure is logged as a warning carrying
 * `metric: "StateDegraded"` and running counters, so a log metric filter can count and alarm on it.
 */
export class Degradation {
  private retryAt = 0;
  private readonly counters: DegradationStats = { failures: 0, fallbackDecisions: 0 };

  constructor(private readonly options: DegradationOptions) {}

  /** True while DynamoDB should be skipped in favour of the fallback. */
  get active(): boolean {
    return this.options.now() < this.retryAt;
  }

  /**
   * Absorbs a failure of DynamoDB to answer: counts it, logs it and opens the breaker. Rethrows any
   * other error (see isUnavailable), so that it fails its own request instead.
   */
  absorb(error: unknown): void {
    if (!isUnavailable(error)) throw error;
    this.counters.failures += 1;
    this.retryAt = this.options.now() + this.options.probeAfterMs;
    this.options.logger.warn('DynamoDB unavailable: using the in-container fallback', {
      metric: 'StateDegraded',
      component: this.options.component,
      failures: this.counters.failures,
      fallbackDecisions: this.counters.fallbackDecisions,
      probeAfterMs: this.options.probeAfterMs,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  }

  recordFallbackDecision(): void {
    this.counters.fallbackDecisions += 1;
  }

  stats(): DegradationStats {
    return { ...this.counters };
  }
}

/** Client faults that still mean "try later": the table is throttling, not refusing this request. */
const THROTTLING = new Set(['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded']);

/**
 * Whether a DynamoDB error means the table could not answer (throttled, a server-side fault, a
 * network failure or timeout), which the in-container fallbacks absorb, rather than a refusal of
 * this very request (a key over DynamoDB's size limits, a missing table, missing permissions). A
 * refusal must fail its request, never switch the container to its fallback: one crafted request
 * would otherwise turn off fresh revocation checks for every caller of the container.
 */
export function isUnavailable(error: unknown): boolean {
  const { name, $fault } = (error ?? {}) as { name?: unknown; $fault?: unknown };
  return $fault !== 'client' || (typeof name === 'string' && THROTTLING.has(name));
}
