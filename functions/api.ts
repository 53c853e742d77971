import middy from '@middy/core';
import httpCors from '@middy/http-cors';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpRouterHandler, { type Route } from '@middy/http-router';
import httpSecurityHeaders from '@middy/http-security-headers';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { loadConfig } from '../lib/config';
import { createContainer } from '../lib/container';
import { MethodNotAllowedError, NotFoundError } from '../lib/errors';
import { assertBodySize } from '../lib/json-body';
import { logger } from '../lib/logger';
import { exchangeOf, exchangeRecord, type ExchangeContext } from './middleware/exchange-record';
import { problemErrors } from './middleware/problem-errors';

// Cold start: configuration is parsed and clients are created once per container.
const config = loadConfig();
const { service } = createContainer(config);

type Event = APIGatewayProxyEventV2;
type Result = APIGatewayProxyStructuredResultV2;

const json = (body: unknown): Result => ({
  statusCode: 200,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
});

type ApiRoute = Route<Event, Result> & { path: string; method: string };

const routes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/v1/stream-tokens',
    handler: async (event: Event, context: Context) => {
      assertBodySize(event.body, event.isBase64Encoded);
      return json(
        await service.vendStreamTokens(
          {
            authorization: event.headers.authorization,
            contentType: event.headers['content-type'],
            body: event.body,
            isBase64Encoded: event.isBase64Encoded,
          },
          exchangeOf(context),
        ),
      );
    },
  },
  {
    method: 'GET',
    path: '/v1/instances',
    handler: async (event: Event, context: Context) =>
      json(await service.listInstances({ authorization: event.headers.authorization }, exchangeOf(context))),
  },
  { method: 'GET', path: '/healthz', handler: async () => json({ status: 'ok' }) },
];

/**
 * CORS preflights reach the function when API Gateway has no CORS configuration (no
 * CORS_ALLOWED_ORIGINS). Routed like any request, they get every header a response carries, and
 * http-cors adds the Access-Control fields for an allowed origin only; an unknown path is 404.
 */
const preflightRoutes: ApiRoute[] = [...new Set(routes.map((route) => route.path))].map((path) => ({
  method: 'OPTIONS',
  path,
  handler: async () => ({ statusCode: 204, headers: {}, body: '' }),
}));

/** A known path with the wrong method is 405 with `Allow`; anything else is 404. */
const notFoundResponse = ({ path }: { method: string; path: string }): never => {
  const normalised = path.length > 1 ? path.replace(/\/$/, '') : path;
  const allow = routes.filter((route) => route.path === normalised).map((route) => route.method);
  throw allow.length > 0 ? new MethodNotAllowedError(allow) : new NotFoundError();
};

export const handler = middy<Event, Result, Error, ExchangeContext>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(exchangeRecord({ logger }))
  .use(httpHeaderNormalizer())
  .use(
    httpCors({
      origins: config.corsAllowedOrigins,
      methods: 'GET,POST',
      headers: 'Authorization,Content-Type',
      exposeHeaders: 'X-Request-Id,RateLimit,RateLimit-Policy,Retry-After,WWW-Authenticate',
      maxAge: 600,
      cacheControl: 'no-store',
    }),
  )
  // The API has no reporting endpoint; the default would send an empty Reporting-Endpoints field.
  // (The option exists in the middleware since 6.x but not yet in its type declarations.)
  .use(httpSecurityHeaders({ reportingEndpoints: false } as Parameters<typeof httpSecurityHeaders>[0]))
  .use(problemErrors({ logger }))
  .handler(httpRouterHandler({ routes: [...routes, ...preflightRoutes], notFoundResponse }));
