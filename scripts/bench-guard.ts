/**
 * `npm run bench:guard`: the fleet-wide upstream guard at the production limit, 20 calls per 1 s.
 *
 * 1. 200 concurrent callers across 4 worker processes (`scripts/fleet-worker.ts`) for 30 s, each
 *    caller with its own subject, instance and device and TOKEN_REUSE_SECONDS=0, so that every request
 *    really wants an upstream call. Measured at the gs emulator: upstream calls per second, the most
 *    in any 1 s sliding window (goal ≤ 20) and the mean of accepted calls per second (goal ≥ 18).
 * 2. 100 identical concurrent requests (same caller, instance, device and hours) in one process: how
 *    many upstream calls they cost (goal 1), with the default reuse window and with coalescing alone.
 *
 * The emulator enforces Tencent's own 20 per 1000 ms, so an overshoot by the guard also shows up as
 * RequestLimitExceeded answers (and the client's retries), as it would against the real upstream.
 * dynalite runs in its own process: arrival times are taken in this process, whose event loop then
 * serves only the emulator. UPSTREAM_GUARD_MARGIN_MS from the environment is passed on (default: the service's own, from lib/config.ts).
 * Numbers depend on the machine; this is a benchmark to compare runs, not a test.
 */
import { loadConfig } from '../lib/config';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createLocalTable } from '../local/dynalite';
import { startGsEmulator, type GsEmulator, type GsEmulatorCall } from '../local/gs-emulator';
import { maxInAnyWindow } from '../local/arrivals';
import { spawnDynaliteProcess, type DynaliteProcess } from '../local/dynalite-process';
import { percentiles, spawnFleetWorker, type CallerPlan, type FleetWorker, type WorkerPlan, type WorkerReport } from './fleet-worker';

const LIMIT = 20;
const RUN_MS = 30_000;
const WORKERS = 4;
const CALLERS = 200;
const IDENTICAL = 100;
/** The first seconds include every process's cold path (first connections, JIT); excluded from the steady mean. */
const WARM_UP_S = 2;
const ISSUER = 'https://login.bench.example/';
const AUDIENCE = 'cloudphone-stream-api';
const SECRET_ID = 'bench-guard-secret-id';
const SECRET_KEY = 'bench-guard-secret-key-0123456789';
const MARGIN_MS = String(loadConfig({ STAGE: 'local', UPSTREAM_GUARD_MARGIN_MS: process.env.UPSTREAM_GUARD_MARGIN_MS }).upstreamGuardMarginMs);

interface Caller {
  subject: string;
  instanceId: string;
  deviceId: string;
}

// Module-level so that cleanUp, which a signal may also run, finds whatever is running.
const workers: FleetWorker[] = [];
let dynamo: DynaliteProcess | undefined;
let emulator: GsEmulator | undefined;
let dir: string | undefined;

async function main(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'bench-guard-'));
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  const [table, upstream] = await Promise.all([
    spawnDynaliteProcess(),
    startGsEmulator({ credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }], rateLimit: { limit: LIMIT, windowMs: 1000 } }),
  ]);
  [dynamo, emulator] = [table, upstream];

  const callers: Caller[] = Array.from({ length: CALLERS }, (_, i) => ({
    subject: `caller-${i}`,
    instanceId: `bench-instance-${i}`,
    deviceId: `device-${i}`,
  }));
  const identical: Caller = { subject: 'identical', instanceId: 'bench-instance-identical', deviceId: 'device-identical' };
  const grantsFile = join(dir, 'grants.json');
  writeFileSync(
    grantsFile,
    JSON.stringify({ grants: [...callers, identical].map((c) => ({ issuer: ISSUER, subject: c.subject, instanceIds: [c.instanceId] })) }),
  );
  const env = (tableName: string, tokenReuseSeconds: number): Record<string, string> => ({
    STAGE: 'local',
    AUTH_ISSUERS: JSON.stringify([{ name: 'bench', issuer: ISSUER, audiences: [AUDIENCE], jwks: { keys: [jwk] }, algorithms: ['ES256'] }]),
    ENTITLEMENTS_FILE: grantsFile,
    TABLE_NAME: tableName,
    DYNAMODB_ENDPOINT: table.endpoint,
    GS_ENDPOINT: upstream.url,
    TENCENTCLOUD_SECRET_ID: SECRET_ID,
    TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
    UPSTREAM_RATE_LIMIT: `${LIMIT}/1s`,
    UPSTREAM_GUARD_MARGIN_MS: MARGIN_MS,
    TOKEN_REUSE_SECONDS: String(tokenReuseSeconds),
    // Caller quotas are not what is measured here: one nobody reaches.
    RATE_LIMIT_PER_CALLER: '100000/60s',
  });
  const callerPlan = async (caller: Caller): Promise<CallerPlan> => ({
    token: await sign(privateKey, caller.subject),
    body: { instanceIds: [caller.instanceId], deviceId: caller.deviceId },
  });

  console.log(
    `Upstream guard benchmark: UPSTREAM_RATE_LIMIT=${LIMIT}/1s, UPSTREAM_GUARD_MARGIN_MS=${MARGIN_MS}, ` +
      `${WORKERS} processes × ${CALLERS / WORKERS} callers for ${RUN_MS / 1000} s, UPSTREAM_TIMEOUT_MS=3000 (default), TOKEN_REUSE_SECONDS=0`,
  );
  console.log(`gs emulator: its own limit ${LIMIT} per 1000 ms, like Tencent's; dynalite in its own process\n`);
  const perWorker = CALLERS / WORKERS;
  const callerPlans = await Promise.all(callers.map(callerPlan));
  const plans = Array.from({ length: WORKERS }, (_, w) => ({ durationMs: RUN_MS, callers: callerPlans.slice(w * perWorker, (w + 1) * perWorker) }));
  const { reports, startedAt, stderr } = await runWorkers(env(table.tableName, 0), plans);
  printGuardRun(upstream.calls, reports, startedAt, stderr);

  console.log(`\n${IDENTICAL} identical concurrent requests in one process (same caller, instance, device, hours):`);
  const sameRequest = await callerPlan(identical);
  const identicalPlan: WorkerPlan = { durationMs: 60_000, requestsPerCaller: 1, callers: Array.from({ length: IDENTICAL }, () => sameRequest) };
  for (const [label, reuseSeconds] of [
    ['TOKEN_REUSE_SECONDS=30 (default: coalescing + reuse)', 30],
    ['TOKEN_REUSE_SECONDS=0 (coalescing alone)', 0],
  ] as const) {
    upstream.reset();
    // A fresh table: the identical caller's quota and the guard's slots start empty.
    const tableName = `bench-identical-${reuseSeconds}-${Date.now()}`;
    await createLocalTable(table.endpoint, tableName);
    const { reports: identicalReports } = await runWorkers(env(tableName, reuseSeconds), [identicalPlan]);
    console.log(`  ${label}: ${upstream.calls.length} upstream call(s) (goal 1); caller statuses ${formatCounts(mergeStatuses(identicalReports))}`);
  }
}

const sign = (privateKey: CryptoKey, subject: string): Promise<string> =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'bench', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime('15m')
    .sign(privateKey);

/** Starts one worker per plan, lets them all go at once, and waits for their reports. */
async function runWorkers(
  env: Record<string, string>,
  plans: WorkerPlan[],
): Promise<{ reports: WorkerReport[]; startedAt: number; stderr: string[] }> {
  const started = plans.map((plan, w) => spawnFleetWorker(`worker-${w}`, env, plan));
  workers.push(...started);
  await Promise.all(started.map((worker) => worker.ready));
  const startedAt = Date.now();
  for (const worker of started) worker.start();
  const reports = await Promise.all(started.map((worker) => worker.report()));
  return { reports, startedAt, stderr: started.flatMap((worker) => worker.stderrLines) };
}

function printGuardRun(calls: readonly GsEmulatorCall[], reports: WorkerReport[], startedAt: number, stderr: string[]): void {
  const runSeconds = RUN_MS / 1000;
  const lastSecond = Math.max(runSeconds - 1, ...calls.map((call) => Math.floor((call.at - startedAt) / 1000)));
  const seconds = Array.from({ length: lastSecond + 1 }, () => ({ calls: 0, accepted: 0, limited: 0 }));
  for (const call of calls) {
    const second = seconds[Math.floor((call.at - startedAt) / 1000)]!;
    second.calls += 1;
    if (call.outcome === 'Success') second.accepted += 1;
    if (call.outcome.startsWith('RequestLimitExceeded')) second.limited += 1;
  }
  console.log('Upstream calls per second (arrivals at the emulator; s = seconds since the callers started):');
  console.log('    s  calls  accepted  RequestLimitExceeded');
  seconds.forEach((second, s) => {
    const note = s >= runSeconds ? '  (after the run: requests already waiting for a slot)' : '';
    console.log(
      `  ${String(s).padStart(3)}  ${String(second.calls).padStart(5)}  ${String(second.accepted).padStart(8)}  ${String(second.limited).padStart(20)}  ${'#'.repeat(second.calls)}${note}`,
    );
  });

  const arrivals = calls.map((call) => call.at).sort((a, b) => a - b);
  // The tightest span holding LIMIT + 1 arrivals: above 1000 ms means no 1 s window held more than LIMIT.
  const tightest = Math.min(...arrivals.slice(LIMIT).map((at, i) => at - arrivals[i]!));
  const acceptedIn = (from: number, to: number) => seconds.slice(from, to).reduce((sum, second) => sum + second.accepted, 0);
  const steady = acceptedIn(WARM_UP_S, runSeconds) / (runSeconds - WARM_UP_S);
  const overall = acceptedIn(0, runSeconds) / runSeconds;
  const limited = calls.filter((call) => call.outcome.startsWith('RequestLimitExceeded')).length;
  const samples = reports.flatMap((report) => report.samples);
  const latency = (status?: number) => {
    const p = percentiles(samples.filter(([s]) => status === undefined || s === status).map(([, ms]) => ms));
    return `p50 ${p.p50} / p95 ${p.p95} / p99 ${p.p99} / max ${p.max}`;
  };

  console.log('');
  console.log(`Max upstream calls in any 1 s sliding window:   ${maxInAnyWindow(arrivals, 1000)} (goal ≤ ${LIMIT})`);
  console.log(`Tightest span holding ${LIMIT + 1} calls:               ${Number.isFinite(tightest) ? `${tightest} ms` : 'n/a'} (> 1000 ms: within the limit)`);
  console.log(`Accepted calls/s, steady (${WARM_UP_S}–${runSeconds} s):            ${steady.toFixed(2)} (goal ≥ 18)`);
  console.log(`Accepted calls/s, overall (0–${runSeconds} s):           ${overall.toFixed(2)}`);
  console.log(`RequestLimitExceeded answers from the emulator: ${limited}`);
  console.log(`Upstream calls in all:                          ${calls.length} (${calls.length - limited - calls.filter((c) => c.outcome === 'Success').length} other than Success or RequestLimitExceeded)`);
  console.log(`Caller statuses:                                ${formatCounts(mergeStatuses(reports))}`);
  console.log(`Caller problem codes:                           ${formatCounts(mergeCounts(reports.map((report) => report.problems)))}`);
  console.log(`Latency ms (handler in-process), all:           ${latency()}`);
  console.log(`Latency ms, 200:                                ${latency(200)}`);
  console.log(`Latency ms, 503:                                ${latency(503)}`);
  console.log(`Worker log lines (level, message, code):        ${formatCounts(summariseLogs(stderr))}`);
}

const mergeCounts = (all: Array<Record<string, number>>): Record<string, number> => {
  const merged: Record<string, number> = {};
  for (const counts of all) for (const [key, count] of Object.entries(counts)) merged[key] = (merged[key] ?? 0) + count;
  return merged;
};
const mergeStatuses = (reports: WorkerReport[]) => mergeCounts(reports.map((report) => report.statuses));
const formatCounts = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, count]) => `${key}: ${count}`)
    .join(', ') || 'none';

/** Worker stderr by kind: one ERROR per 5xx answer, warnings for retries and DynamoDB fallbacks. */
function summariseLogs(lines: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    let key: string;
    try {
      const entry = JSON.parse(line) as { level?: string; message?: string; code?: string; component?: string };
      key = [entry.level, entry.message, entry.code ?? entry.component].filter(Boolean).join(' ');
    } catch {
      key = `(not JSON) ${line.slice(0, 120)}`;
    }
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Stops every process this script started and removes its files; safe to call twice. */
async function cleanUp(): Promise<void> {
  await Promise.all(workers.splice(0).map((worker) => worker.kill()));
  await Promise.all([emulator?.close(), dynamo?.kill()]);
  emulator = undefined;
  dynamo = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    void cleanUp().finally(() => process.exit(130));
  });
}

main()
  .catch((error: unknown) => {
    // Ctrl-C also reaches the workers, whose missing reports are then no failure worth reporting.
    if (!interrupted) console.error('bench:guard failed:', error);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
