/**
 * One "Lambda container" for `npm run bench:latency`: a fresh process that loads the production
 * bundle (path in BENCH_BUNDLE) with the environment it was given, then measures cold start or warm
 * latency (BENCH_MODE) and prints one JSON line. Tokens come from the dev issuer's /token endpoint.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { LOCAL } from '../lib/local-defaults';
import { apiEvent, lambdaContext } from '../local/lambda-events';

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

const WARM_REQUESTS = 1000;

/** A dev-issuer token whose instances claim reaches the demo pool (the bench grants are a pool, not per subject). */
async function mintToken(subject: string): Promise<string> {
  const response = await fetch(`${process.env.BENCH_TOKEN_URL}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sub: subject, cloudphone_instances: LOCAL.demoInstanceIds }),
  });
  return ((await response.json()) as { access_token: string }).access_token;
}

function vendEvent(token: string): APIGatewayProxyEventV2 {
  return apiEvent({
    method: 'POST',
    path: '/v1/stream-tokens',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ instanceIds: LOCAL.demoInstanceIds, deviceId: 'bench' }),
  });
}

async function timed(handler: Handler, event: APIGatewayProxyEventV2): Promise<number> {
  const started = performance.now();
  const result = await handler(event, lambdaContext());
  if (result.statusCode !== 200) throw new Error(`unexpected status ${result.statusCode}: ${result.body}`);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const firstToken = await mintToken('bench-0');
  const loadStarted = performance.now();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { handler } = require(String(process.env.BENCH_BUNDLE)) as { handler: Handler };
  const loadMs = performance.now() - loadStarted;
  const firstRequestMs = await timed(handler, vendEvent(firstToken));
  if (process.env.BENCH_MODE === 'cold') {
    console.log(JSON.stringify({ loadMs, firstRequestMs, rssMb: process.memoryUsage().rss / 1e6 }));
    return;
  }

  const tokens: string[] = [];
  for (let i = 1; i <= WARM_REQUESTS; i += 50) {
    tokens.push(...(await Promise.all(Array.from({ length: 50 }, (_, j) => mintToken(`bench-${i + j}`)))));
  }
  const listEvent = () => apiEvent({ method: 'GET', path: '/v1/instances', headers: { authorization: `Bearer ${firstToken}` } });
  for (let i = 0; i < 50; i++) await timed(handler, listEvent());

  const vend: number[] = [];
  for (const token of tokens) vend.push(await timed(handler, vendEvent(token)));
  const list: number[] = [];
  for (let i = 0; i < 500; i++) list.push(await timed(handler, listEvent()));
  global.gc?.();
  const memory = process.memoryUsage();
  console.log(JSON.stringify({ vend, list, rssMb: memory.rss / 1e6, heapUsedMb: memory.heapUsed / 1e6 }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
