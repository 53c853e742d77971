import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../lib/config';
import { FileEntitlementStore } from '../lib/entitlements/file-store';
import { LOCAL, LOCAL_PORTS } from '../lib/local-defaults';
import { startDevIssuer, type DevIssuer } from './dev-issuer';
import { startLocalDynamo, type LocalDynamo } from './dynalite';
import { startGsEmulator, type GsEmulator } from './gs-emulator';

/**
 * Everything `npm start` runs, on 127.0.0.1 only: a local DynamoDB (dynalite), the gs emulator, the dev
 * JWT issuer, the demo page and the API under serverless-offline. A stand-in is skipped when the
 * environment already points the service elsewhere (TABLE_NAME or DYNAMODB_ENDPOINT, GS_ENDPOINT,
 * AUTH_ISSUERS), so the same command also runs against real dependencies.
 * The end-to-end tests start the same stack on free ports.
 */
export interface LocalStackOptions {
  env?: NodeJS.ProcessEnv;
  apiPort?: number;
  gsEmulatorPort?: number;
  dynamodbPort?: number;
  devIssuerPort?: number;
  demoPagePort?: number;
  /** Where serverless-offline's output goes; the default passes it through. */
  onOfflineOutput?: (chunk: string) => void;
}

export interface LocalStack {
  apiUrl: string;
  demoPageUrl: string;
  emulator: GsEmulator | undefined;
  dynamo: LocalDynamo | undefined;
  devIssuer: DevIssuer | undefined;
  /** The environment the API runs with (the caller's plus the stand-ins' addresses). */
  apiEnv: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

const ROOT = join(__dirname, '..');

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const env = { ...(options.env ?? process.env) };
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const stopOne of stops.reverse()) await stopOne().catch(() => undefined);
  };

  try {
    const apiEnv: NodeJS.ProcessEnv = { ...env, STAGE: env.STAGE || 'local' };

    let dynamo: LocalDynamo | undefined;
    if (!set('TABLE_NAME') && !set('DYNAMODB_ENDPOINT')) {
      dynamo = await startLocalDynamo({ port: options.dynamodbPort ?? LOCAL_PORTS.dynamodb, tableName: LOCAL.tableName });
      stops.push(() => dynamo!.close());
      apiEnv.TABLE_NAME = LOCAL.tableName;
      apiEnv.DYNAMODB_ENDPOINT = dynamo.endpoint;
    }

    let emulator: GsEmulator | undefined;
    if (!set('GS_ENDPOINT')) {
      emulator = await startGsEmulator({
        port: options.gsEmulatorPort ?? LOCAL_PORTS.gsEmulator,
        credentials: [
          {
            secretId: env.TENCENTCLOUD_SECRET_ID || LOCAL.secretId,
            secretKey: env.TENCENTCLOUD_SECRET_KEY || LOCAL.secretKey,
          },
        ],
      });
      stops.push(() => emulator!.close());
      apiEnv.GS_ENDPOINT = emulator.url;
    }

    let devIssuer: DevIssuer | undefined;
    if (!set('AUTH_ISSUERS')) {
      devIssuer = await startDevIssuer({ port: options.devIssuerPort ?? LOCAL_PORTS.devIssuer });
      stops.push(() => devIssuer!.close());
      apiEnv.AUTH_ISSUERS = JSON.stringify([{ ...LOCAL.issuers[0], issuer: devIssuer.issuer, jwksUri: devIssuer.jwksUri }]);
    }

    const apiPort = options.apiPort ?? Number(env.PORT || LOCAL_PORTS.api);
    const apiUrl = `http://${LOCAL.host}:${apiPort}`;

    const demoPage = await startDemoPage(options.demoPagePort ?? LOCAL_PORTS.demoPage, {
      apiUrl,
      tokenUrl: devIssuer ? `${devIssuer.url}token` : null,
      subject: LOCAL.demoSubject,
      instanceIds: LOCAL.demoInstanceIds,
      deviceId: LOCAL.demoDeviceId,
    });
    stops.push(() => closeServer(demoPage.server));
    if (!set('CORS_ALLOWED_ORIGINS')) apiEnv.CORS_ALLOWED_ORIGINS = demoPage.url;

    // Fail fast with the ConfigError naming the variable, as the function would at its cold start,
    // instead of waiting for a health check that a function failing on every load can never pass.
    const config = loadConfig(apiEnv);
    if (config.entitlementsFile) FileEntitlementStore.fromFile(config.entitlementsFile);

    const offline = await startOffline(apiPort, apiEnv, options.onOfflineOutput);
    stops.push(() => stopChild(offline));
    await waitForHealth(apiUrl, offline);

    return { apiUrl, demoPageUrl: demoPage.url, emulator, dynamo, devIssuer, apiEnv, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function startDemoPage(port: number, demoConfig: Record<string, unknown>): Promise<{ server: Server; url: string }> {
  // Escaped so the JSON cannot close the <script> element it sits in.
  const html = readFileSync(join(__dirname, 'demo-page.html'), 'utf8').replace(
    '__DEMO_CONFIG__',
    JSON.stringify(demoConfig).replace(/</g, '\\u003c'),
  );
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || (request.url !== '/' && request.url !== '/index.html')) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(html);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOCAL.host, resolve);
  });
  return { server, url: `http://${LOCAL.host}:${(server.address() as AddressInfo).port}` };
}

function startOffline(apiPort: number, env: NodeJS.ProcessEnv, onOutput?: (chunk: string) => void): Promise<ChildProcess> {
  return freePort().then((lambdaPort) => {
    // The sls process itself (not an npx wrapper) must receive SIGINT for serverless-offline to stop cleanly.
    const child = spawn(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js'),
        'offline',
        'start',
        '--stage',
        String(env.STAGE),
        '--httpPort',
        String(apiPort),
        '--lambdaPort',
        String(lambdaPort),
      ],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const forward = onOutput ?? ((chunk: string) => process.stdout.write(chunk));
    child.stdout?.setEncoding('utf8').on('data', forward);
    child.stderr?.setEncoding('utf8').on('data', forward);
    return child;
  });
}

async function waitForHealth(apiUrl: string, child: ChildProcess, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`serverless-offline exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the API did not answer ${apiUrl}/healthz within ${timeoutMs} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(killTimer);
      resolve();
    });
    child.kill('SIGINT');
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** A port the OS reports free on 127.0.0.1 (for serverless-offline's internal Lambda server). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOCAL.host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
