/**
 * One process of a simulated fleet: it loads `functions/api.ts` with the environment its parent gave
 * it (configuration is read at module load, as at a Lambda cold start), then runs one loop per caller
 * of its plan, each calling `POST /v1/stream-tokens` in-process with that caller's JWT, and reports
 * what the callers saw. Many concurrent invocations in one process stand for several containers: that
 * is faithful for the upstream guard, whose state is in DynamoDB, but token reuse and coalescing are
 * per process, so measurements of the guard give every caller its own request and TOKEN_REUSE_SECONDS=0.
 *
 * The parent side is `spawnFleetWorker`. Protocol: the plan arrives in FLEET_WORKER_PLAN (JSON); once
 * the handler is loaded the worker prints `ready` and waits for a `go` line on stdin, so that several
 * workers start their loops together whatever each one's load time; at the end it prints one JSON
 * line, its WorkerReport, and exits. stdout carries nothing else: the handler's own logging is kept at
 * WARN, which Powertools writes to stderr. When stdin closes early (the parent died) the worker exits.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { apiEvent, lambdaContext } from '../local/lambda-events';

export interface CallerPlan {
  /** A bearer token the handler accepts, valid for the whole run. */
  token: string;
  /** The `POST /v1/stream-tokens` body this caller sends every time. */
  body: { instanceIds: string[]; deviceId: string; renewalHours?: number };
}

export interface WorkerPlan {
  /** Loops start no new request after this long. Requests in flight then still finish (within UPSTREAM_TIMEOUT_MS). */
  durationMs: number;
  /** Each loop stops after this many requests even before `durationMs` (default: no such limit). */
  requestsPerCaller?: number;
  /** One concurrent loop per entry; entries may repeat (identical concurrent requests). */
  callers: CallerPlan[];
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface WorkerReport {
  /** How many answers of each HTTP status the callers saw. */
  statuses: Record<string, number>;
  /** The problem `code` of every answer other than 200, counted. */
  problems: Record<string, number>;
  /** Handler latency in ms over all requests (in-process: no API Gateway, no network to the caller). */
  latencyMs: Percentiles;
  /** [status, latency ms] of every request, so that a parent can compute statistics across workers. */
  samples: Array<[number, number]>;
}

const PLAN_VARIABLE = 'FLEET_WORKER_PLAN';
const READY = 'ready';
const GO = 'go';
const ROOT = join(__dirname, '..');

/** The handler as Lambda calls it; middy's own type also names the context its middlewares add and an options argument. */
type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** Nearest-rank percentiles of `values` (ms, rounded to 0.1). */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => {
    const value = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((sorted.length * p) / 100) - 1))] ?? 0;
    return Math.round(value * 10) / 10;
  };
  return { p50: at(50), p95: at(95), p99: at(99), max: at(100) };
}

async function callerLoop(handler: Handler, caller: CallerPlan, plan: WorkerPlan, endAt: number, report: WorkerReport): Promise<void> {
  const body = JSON.stringify(caller.body);
  for (let sent = 0; performance.now() < endAt && sent < (plan.requestsPerCaller ?? Infinity); sent++) {
    const started = performance.now();
    const result = await handler(
      apiEvent({
        method: 'POST',
        path: '/v1/stream-tokens',
        headers: { authorization: `Bearer ${caller.token}`, 'content-type': 'application/json' },
        body,
      }),
      lambdaContext(),
    );
    const latency = performance.now() - started;
    const status = result.statusCode ?? 200;
    report.statuses[status] = (report.statuses[status] ?? 0) + 1;
    report.samples.push([status, Math.round(latency * 10) / 10]);
    if (status === 200) continue;
    const code = String((JSON.parse(result.body ?? '{}') as { code?: unknown }).code);
    report.problems[code] = (report.problems[code] ?? 0) + 1;
    // A client over its own quota waits as told: hammering on would only load DynamoDB, not the guard.
    // A 503 is retried at once, the worst case for the guard (the caller has already waited its budget).
    if (status === 429) {
      const retryAfterMs = Number(result.headers?.['Retry-After'] ?? 1) * 1000;
      await sleep(Math.min(retryAfterMs, Math.max(0, endAt - performance.now())));
    }
  }
}

async function runWorker(): Promise<void> {
  const plan = JSON.parse(process.env[PLAN_VARIABLE] ?? '') as WorkerPlan;
  // Loaded only here, not at import: the parent imports this module for spawnFleetWorker.
  const { handler } = (await import('../functions/api')) as unknown as { handler: Handler };

  const input = createInterface({ input: process.stdin });
  // The parent keeps stdin open for the whole run: its end means the parent is gone.
  input.once('close', () => process.exit(2));
  const go = new Promise<void>((resolve) => input.on('line', (line) => line === GO && resolve()));
  process.stdout.write(`${READY}\n`);
  await go;

  const report: WorkerReport = { statuses: {}, problems: {}, latencyMs: percentiles([]), samples: [] };
  const endAt = performance.now() + plan.durationMs;
  await Promise.all(plan.callers.map((caller) => callerLoop(handler, caller, plan, endAt, report)));
  report.latencyMs = percentiles(report.samples.map(([, latency]) => latency));
  // Exit explicitly: the handler's keep-alive connections and stdin would keep the process alive.
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}

export interface FleetWorker {
  /** Resolves once the handler is loaded and the worker waits for `start()`; rejects if it exits first. */
  ready: Promise<void>;
  start(): void;
  /** The worker's report once it exits by itself; rejects when it exits without one. */
  report(): Promise<WorkerReport>;
  /**
   * Everything the worker wrote to stderr, line by line: the handler's WARN and ERROR logs (one per
   * 5xx answer, with a stack), kept rather than forwarded so that the parent decides what to show.
   */
  stderrLines: string[];
  /** SIGKILL unless it has already exited. */
  kill(): Promise<void>;
}

/**
 * Starts a worker: `node --import tsx` runs it in the spawned process itself (the tsx CLI would run it
 * in a grandchild that outlives a kill). Its environment is `env` alone plus PATH, like a Lambda's.
 */
export function spawnFleetWorker(name: string, env: Record<string, string>, plan: WorkerPlan): FleetWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, POWERTOOLS_LOG_LEVEL: 'WARN', ...env, [PLAN_VARIABLE]: JSON.stringify(plan) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => stderrLines.push(line));
  // 'close' comes after the exit and after stdout and stderr are fully read.
  const closed = new Promise<string>((resolve) => {
    child.once('close', (code, signal) => resolve(`exited with ${signal ?? `status ${code}`}`));
    child.once('error', (error) => resolve(`failed to start: ${error.message}`));
  });
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      stdoutLines.push(line);
      if (line === READY) resolve();
    });
    void closed.then((how) => reject(new Error(`${name} ${how} before it was ready`)));
  });
  return {
    ready,
    start: () => child.stdin.write(`${GO}\n`),
    async report() {
      const how = await closed;
      const last = stdoutLines.at(-1);
      if (child.exitCode !== 0 || last === undefined || last === READY) {
        const tail = stderrLines.slice(-3).map((line) => line.slice(0, 300));
        throw new Error(`${name} ${how} without a report; last stderr lines: ${tail.join(' | ') || 'none'}`);
      }
      return JSON.parse(last) as WorkerReport;
    },
    stderrLines,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await closed;
    },
  };
}

if (require.main === module) {
  runWorker().catch((error: unknown) => {
    console.error('fleet worker failed:', error);
    process.exit(1);
  });
}
