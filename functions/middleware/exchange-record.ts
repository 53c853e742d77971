import type middy from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { toServiceError } from '../../lib/errors';
import { newExchange, type Exchange } from '../../lib/stream-token-service';
import { requestIdOf } from './request-id';

export type ExchangeContext = Context & { exchange: Exchange };

/** The Exchange that `exchangeRecord` opened for this invocation (route handlers receive a plain Context). */
export function exchangeOf(context: Context): Exchange {
  const { exchange } = context as Partial<ExchangeContext>;
  if (!exchange) throw new Error('exchangeRecord middleware is not registered');
  return exchange;
}
type Request = middy.Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, ExchangeContext>;

/**
 * Opens a per-request Exchange for `lib/` to fill in, then on the way out (success or error) adds the
 * headers every response carries and writes the request's single audit line. The line names who asked
 * for what and how it went; by construction it holds no token, JWT or key.
 */
export function exchangeRecord(options: {
  logger: Logger;
}): middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, ExchangeContext> {
  const startedAt = new WeakMap<object, number>();

  const finish = async (request: Request): Promise<void> => {
    const response = request.response;
    if (!response) return;
    const exchange = request.context.exchange;
    const requestId = requestIdOf(request.event);
    response.headers = {
      ...response.headers,
      ...exchange?.responseHeaders,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'X-Request-Id': requestId,
    };
    const http = request.event.requestContext?.http;
    options.logger.info('request', {
      method: http?.method,
      route: http?.path,
      status: response.statusCode,
      outcome: request.error ? toServiceError(request.error).code : 'ok',
      issuer: exchange?.issuerName,
      subject: exchange?.subject,
      instanceCount: exchange?.instanceCount,
      upstreamRequestId: exchange?.upstreamRequestId,
      upstreamAttempts: exchange?.upstreamAttempts,
      upstreamLatencyMs: exchange?.upstreamLatencyMs,
      reusedTokens: exchange?.reusedTokens,
      revoked: exchange?.revoked,
      latencyMs: Math.round(performance.now() - (startedAt.get(request.event) ?? performance.now())),
    });
  };

  return {
    before: async (request) => {
      startedAt.set(request.event, performance.now());
      request.context.exchange = newExchange();
      // Every line of this invocation (retries, failures, the audit line) carries the request id.
      options.logger.appendKeys({ requestId: requestIdOf(request.event) });
    },
    after: finish,
    onError: finish,
  };
}
