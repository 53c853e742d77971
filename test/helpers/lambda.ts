import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';

export interface ApiRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}

/** An API Gateway HTTP API (payload 2.0) event as the gateway delivers it. */
export function apiEvent(request: ApiRequest): APIGatewayProxyEventV2 {
  const requestId = randomUUID();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: request.path,
    rawQueryString: '',
    headers: { host: 'api.example.test', ...request.headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.test',
      domainPrefix: 'api',
      http: { method: request.method, path: request.path, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body: request.body,
    isBase64Encoded: request.isBase64Encoded ?? false,
  };
}

export function lambdaContext(): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'cloudphone-stream-tokens-test-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:ap-southeast-1:123456789012:function:cloudphone-stream-tokens-test-api',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/test',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => 10_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

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
