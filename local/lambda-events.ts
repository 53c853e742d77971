/**
 * What Lambda hands the API function: an API Gateway HTTP API (payload 2.0) event and an invocation
 * context. Shared by the tests and the benchmark scripts, which invoke `functions/api.ts` in-process;
 * it depends on nothing but node:crypto so that a script can also bundle it on its own.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';

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
