/**
 * `npm run bench:latency`: what one Lambda container costs, measured on the production bundle.
 * Builds functions/api.ts as serverless-esbuild does (minified, node22), starts the local stand-ins
 * (dynalite, the gs emulator, the dev issuer) in this process, and runs each "container" as a fresh
 * process (scripts/bench-latency-container.ts) so its memory and cold start are its own:
 * - bundle size, raw and gzipped;
 * - cold start: loading the bundle, then the first request (JWKS fetch included), 5 fresh processes;
 * - warm latency of POST /v1/stream-tokens (every request reaches the upstream: reuse off) and
 *   GET /v1/instances, one request at a time as a Lambda container serves them;
 * - the container's memory after the warm run.
 * Numbers depend on the machine: this compares runs, it is not a test.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { LOCAL } from '../lib/local-defaults';
import { startDevIssuer } from '../local/dev-issuer';
import { startLocalDynamo } from '../local/dynalite';
import { startGsEmulator } from '../local/gs-emulator';
import { percentiles } from './fleet-worker';

/** What scripts/bench-latency-container.ts prints in each mode. */
interface ColdResult {
  loadMs: number;
  firstRequestMs: number;
  rssMb: number;
}
interface WarmResult {
  vend: number[];
  list: number[];
  rssMb: number;
  heapUsedMb: number;
}

const ROOT = join(__dirname, '..');
const run = promisify(execFile);

const ms = (value: number) => `${value.toFixed(1)} ms`;
const median = (values: number[]) => percentiles(values).p50;

async function main(): Promise<void> {
  const outdir = mkdtempSync(join(tmpdir(), 'bench-latency-'));
  const bundle = join(outdir, 'api.js');
  await build({
    entryPoints: [join(ROOT, 'functions', 'api.ts')],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    mainFields: ['module', 'main'],
    outfile: bundle,
    logLevel: 'error',
  });
  const bundleKiB = statSync(bundle).size / 1024;
  const gzipKiB = gzipSync(readFileSync(bundle)).length / 1024;

  const tableName = 'bench';
  const dynamo = await startLocalDynamo({ tableName });
  const emulator = await startGsEmulator({
    credentials: [{ secretId: LOCAL.secretId, secretKey: LOCAL.secretKey }],
    rateLimit: { limit: 1_000_000, windowMs: 1000 },
  });
  const issuer = await startDevIssuer({ port: 0 });
  const grants = join(outdir, 'grants.json');
  writeFileSync(grants, JSON.stringify({ pools: [{ issuer: issuer.issuer, instanceIds: LOCAL.demoInstanceIds }] }));
  const env = {
    PATH: process.env.PATH,
    STAGE: 'local',
    AUTH_ISSUERS: JSON.stringify([{ ...LOCAL.issuers[0], issuer: issuer.issuer, jwksUri: issuer.jwksUri }]),
    ENTITLEMENTS_FILE: grants,
    TABLE_NAME: tableName,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    GS_ENDPOINT: emulator.url,
    // Every request must really reach the upstream: no reuse, and limits nobody reaches.
    TOKEN_REUSE_SECONDS: '0',
    RATE_LIMIT_PER_CALLER: '1000000/60s',
    UPSTREAM_RATE_LIMIT: '100000/1s',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    BENCH_BUNDLE: bundle,
    BENCH_TOKEN_URL: `${issuer.url}token`,
  };
  // The demo pool admits any subject of the dev issuer whose token claims the demo instances.
  const container = async <Result>(mode: 'cold' | 'warm'): Promise<Result> => {
    const { stdout } = await run(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', join(ROOT, 'scripts', 'bench-latency-container.ts')],
      { env: { ...env, BENCH_MODE: mode }, maxBuffer: 64 * 1024 * 1024 },
    );
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as Result;
  };

  try {
    const colds: ColdResult[] = [];
    for (let i = 0; i < 5; i++) colds.push(await container<ColdResult>('cold'));
    const warm = await container<WarmResult>('warm');
    const row = (label: string, samples: number[]) => {
      const { p50, p95, p99 } = percentiles(samples);
      return `| ${label} | ${samples.length} | ${ms(p50)} | ${ms(p95)} | ${ms(p99)} |`;
    };
    console.log(
      [
        `Node ${process.version}, ${new Date().toISOString()}, local stand-ins on 127.0.0.1 (dynalite is slower than DynamoDB)`,
        '',
        `bundle: ${bundleKiB.toFixed(0)} KiB minified, ${gzipKiB.toFixed(0)} KiB gzipped`,
        `cold start (median of 5 fresh processes): load the bundle ${ms(median(colds.map((c) => c.loadMs)))}, ` +
          `first POST ${ms(median(colds.map((c) => c.firstRequestMs)))} (JWKS fetch included), RSS ${median(colds.map((c) => c.rssMb)).toFixed(0)} MB`,
        '',
        '| warm request, one at a time | n | p50 | p95 | p99 |',
        '|---|---|---|---|---|',
        row('POST /v1/stream-tokens (upstream call each time)', warm.vend),
        row('GET /v1/instances', warm.list),
        '',
        `container memory after ${warm.vend.length + warm.list.length + 51} requests (after GC): RSS ${warm.rssMb.toFixed(0)} MB, heap used ${warm.heapUsedMb.toFixed(1)} MB`,
      ].join('\n'),
    );
  } finally {
    await Promise.all([emulator.close(), issuer.close(), dynamo.close()]);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
