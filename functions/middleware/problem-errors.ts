import type middy from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { toServiceError } from '../../lib/errors';
import { PROBLEM_CONTENT_TYPE, toProblem } from '../../lib/problem';
import { requestIdOf } from './request-id';

type Request = middy.Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;

/**
 * The one place a thrown error becomes a response: RFC 9457 problem details with the error's stable
 * `code`. Registered last so that it runs first on error and every other middleware (CORS, security
 * headers, the exchange record) decorates the problem response like any other.
 */
export function problemErrors(options: { logger: Logger }): middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    onError: async (request: Request) => {
      const error = toServiceError(request.error);
      // `cause` carries what went wrong inside (upstream code, request id, stack) for operators only.
      // A full upstream quota (503) is load, not a fault: a warning without the stack.
      if (error.status === 503) {
        options.logger.warn('request shed', { code: error.code, cause: describeCause(error.cause, 0, false) });
      } else if (error.status >= 500) {
        options.logger.error('request failed', { code: error.code, error: describeCause(request.error) });
      }
      request.response = {
        statusCode: error.status,
        headers: { ...error.headers(), 'Content-Type': PROBLEM_CONTENT_TYPE },
        body: JSON.stringify(toProblem(error, requestIdOf(request.event))),
      };
    },
  };
}

/** A loggable summary of an error chain: names, codes and messages, no request data. */
function describeCause(error: unknown, depth = 0, withStack = true): Record<string, unknown> | undefined {
  if (!(error instanceof Error) || depth > 3) return undefined;
  const details = error as Error & { code?: unknown; failure?: unknown };
  return {
    name: error.name,
    message: error.message,
    ...(details.code !== undefined && { code: details.code }),
    ...(details.failure !== undefined && { failure: details.failure }),
    ...(withStack && error.stack && { stack: error.stack }),
    ...(error.cause !== undefined && { cause: describeCause(error.cause, depth + 1, withStack) }),
  };
}
