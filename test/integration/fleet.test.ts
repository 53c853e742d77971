import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnDynaliteProcess, type DynaliteProcess } from '../../local/dynalite-process';
import { startGsEmulator, type GsEmulator } from '../../local/gs-emulator';
import { spawnFleetWorker, type CallerPlan, type FleetWorker } from '../../scripts/fleet-worker';
import { maxInAnyWindow } from '../../local/arrivals';
import { createEcKey, jwksOf, signToken } from '../helpers/jwt';

/**
 * The upstream guard across a fleet: 4 separate OS processes, each loading the handler and serving 25
 * concurrent callers, share one dynalite and one gs emulator. The guard allows 5 calls per second; the
 * emulator's own limit is far higher, so a guard failure shows up as too many arrivals in the
 * emulator's log instead of being masked by its RequestLimitExceeded.
 */
const WORKERS = 4;
const CALLERS_PER_WORKER = 25;
const LIMIT = 5;
const RUN_MS = 4000;
const FLEET = 'https://login.fleet.example/';
const LIMITED = 'https://login.limited.example/';
const AUDIENCE = 'cloudphone-stream-api';
const SECRET_ID = 'fleet-test-secret-id';
const SECRET_KEY = 'fleet-test-secret-key-0123456789';

let dir: string;
let dynamo: DynaliteProcess;
let emulator: GsEmulator;
const workers: FleetWorker[] = [];
const statuses = new Map<number, number>();
const problems = new Map<string, number>();
/** From the handler's ERROR lines (one per 5xx answer other than 503): the code and its inner cause. */
const failureReasons: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleet-test-'));
  const key = await createEcKey('fleet-ec');
  [dynamo, emulator] = await Promise.all([
    // In its own process, as in every other suite that loads it: in this one it would hold up the
    // emulator's answers with its own work for 100 callers, and push calls past their budget.
    spawnDynaliteProcess(),
    startGsEmulator({ credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }], rateLimit: { limit: 1000, windowMs: 1000 } }),
  ]);

  // Every caller its own subject, instance and device: each request really wants an upstream call.
  // Every tenth caller comes through an issuer with a quota of 1 request a minute, so it also meets 429.
  const now = Math.floor(Date.now() / 1000);
  const callers = await Promise.all(
    Array.from({ length: WORKERS * CALLERS_PER_WORKER }, async (_, i) => {
      const issuer = i % 10 === 0 ? LIMITED : FLEET;
      const subject = `caller-${i}`;
      const instanceId = `fleet-instance-${i}`;
      const claims = { iss: issuer, aud: AUDIENCE, sub: subject, iat: now, exp: now + 600 };
      const plan: CallerPlan = { token: await signToken(key, claims), body: { instanceIds: [instanceId], deviceId: `device-${i}` } };
      return { issuer, subject, instanceId, plan };
    }),
  );
  const grantsFile = join(dir, 'grants.json');
  writeFileSync(grantsFile, JSON.stringify({ grants: callers.map(({ issuer, subject, instanceId }) => ({ issuer, subject, instanceIds: [instanceId] })) }));

  const issuer = (name: string, iss: string, perCaller: string) => ({
    name,
    issuer: iss,
    audiences: [AUDIENCE],
    jwks: jwksOf(key),
    algorithms: ['ES256'],
    rateLimit: { perCaller },
  });
  const env = {
    STAGE: 'local',
    AUTH_ISSUERS: JSON.stringify([issuer('fleet', FLEET, '1000/60s'), issuer('limited', LIMITED, '1/60s')]),
    ENTITLEMENTS_FILE: grantsFile,
    TABLE_NAME: dynamo.tableName,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    GS_ENDPOINT: emulator.url,
    TENCENTCLOUD_SECRET_ID: SECRET_ID,
    TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
    UPSTREAM_RATE_LIMIT: `${LIMIT}/1s`,
    // The margin must exceed the spread of the delay from stamping a slot to the call's arrival (see
    // upstream-guard.ts). Here that spread reaches ~150 ms: 100 busy callers in 4 processes, dynalite
    // and the emulator share 2 cores with the other suites, and each process's first call is cold.
    UPSTREAM_GUARD_MARGIN_MS: '250',
    // Short enough that callers queued behind the guard give up with 503 within the run; long enough
    // that a call granted a slot (with a quarter of the budget left) completes on a loaded CI machine.
    UPSTREAM_TIMEOUT_MS: '2000',
    TOKEN_REUSE_SECONDS: '0',
  };
  for (let w = 0; w < WORKERS; w++) {
    const plan = { durationMs: RUN_MS, callers: callers.slice(w * CALLERS_PER_WORKER, (w + 1) * CALLERS_PER_WORKER).map((c) => c.plan) };
    workers.push(spawnFleetWorker(`fleet-worker-${w}`, env, plan));
  }
  await Promise.all(workers.map((worker) => worker.ready));
  for (const worker of workers) worker.start();
  for (const report of await Promise.all(workers.map((worker) => worker.report()))) {
    for (const [status, count] of Object.entries(report.statuses)) statuses.set(Number(status), (statuses.get(Number(status)) ?? 0) + count);
    for (const [code, count] of Object.entries(report.problems)) problems.set(code, (problems.get(code) ?? 0) + count);
  }
  for (const line of workers.flatMap((worker) => worker.stderrLines)) {
    const entry = JSON.parse(line) as { level?: string; code?: string; error?: { message?: string; cause?: { message?: string } } };
    if (entry.level === 'ERROR') failureReasons.push(`${entry.code}: ${entry.error?.cause?.message ?? entry.error?.message}`);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.kill()));
  await Promise.all([emulator?.close(), dynamo?.kill()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('upstream guard across 4 processes', () => {
  it('lets no more than 5 calls arrive at the upstream in any 1 s window, yet keeps the quota in use', () => {
    const arrivals = emulator.calls.map((call) => call.at);
    expect(maxInAnyWindow(arrivals, 1000)).toBeLessThanOrEqual(LIMIT);
    // More than one window's worth: a guard that merely blocked everything would not pass.
    expect(arrivals.length).toBeGreaterThanOrEqual(2 * LIMIT);
  });

  it('answers callers only with 200, 429 or 503, and with each of them', () => {
    // Compared together, so that a failure names the unexpected problem codes and the handler's reasons.
    expect({ statuses: [...statuses.keys()].sort((a, b) => a - b), problems: [...problems.keys()].sort(), failureReasons: failureReasons.slice(0, 3) }).toEqual({
      statuses: [200, 429, 503],
      problems: ['rate_limited', 'upstream_busy'],
      failureReasons: [],
    });
  });

  it('never meets RequestLimitExceeded upstream', () => {
    expect(new Set(emulator.calls.map((call) => call.outcome))).toEqual(new Set(['Success']));
  });
});
