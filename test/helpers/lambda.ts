import { jest } from '@jest/globals';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { apiEvent, lambdaContext, type ApiRequest } from '../../local/lambda-events';

export { apiEvent, lambdaContext, type ApiRequest };

export type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * Loads `functions/api.ts` as a fresh cold start with exactly the given environment, the way Lambda
 * would: configuration is read at module load.
 */
export function loadHandler(env: Record<string, string>): ApiHandler {
  const saved = process.env;
  process.env = { PATH: saved.PATH, ...env };
  try {
    let handler: ApiHandler | undefined;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      handler = (require('../../functions/api') as { handler: ApiHandler }).handler;
    });
    return handler!;
  } finally {
    process.env = saved;
  }
}

export interface InvokeResult {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export async function invoke(handler: ApiHandler, request: ApiRequest): Promise<InvokeResult> {
  const result = await handler(apiEvent(request), lambdaContext());
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
  return { status: result.statusCode ?? 200, headers, body: result.body ? (JSON.parse(result.body) as Record<string, unknown>) : {} };
}
