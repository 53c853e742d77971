import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { LOCAL } from '../../lib/local-defaults';
import { closeServer, freePort, startDemoPage, startLocalStack, type LocalStack } from '../../local/stack';

/**
 * The service as a user meets it: `npm start`'s stack (gs emulator, dev issuer, demo page, the API
 * under serverless-offline) over real HTTP on 127.0.0.1, and a real browser for CORS.
 */
const [FIRST, SECOND] = LOCAL.demoInstanceIds as [string, string];
const DEVICE = LOCAL.demoDeviceId;

/** Evaluated in the page: the demo page's status leaves 'working' once its calls are done. */
const STATUS_SETTLED = "document.querySelector('#status').textContent !== 'working'";

let stack: LocalStack;
let browser: Browser | undefined;
const offlineOutput: string[] = [];

beforeAll(async () => {
  const devIssuerPort = await freePort();
  const issuer = `http://127.0.0.1:${devIssuerPort}/`;
  const grantsFile = join(mkdtempSync(join(tmpdir(), 'e2e-')), 'grants.json');
  writeFileSync(grantsFile, JSON.stringify({ grants: [{ issuer, subject: LOCAL.demoSubject, instanceIds: LOCAL.demoInstanceIds }] }));
  stack = await startLocalStack({
    env: { PATH: process.env.PATH, HOME: process.env.HOME, STAGE: 'local', ENTITLEMENTS_FILE: grantsFile },
    apiPort: await freePort(),
    gsEmulatorPort: 0,
    dynamodbPort: 0,
    devIssuerPort,
    demoPagePort: 0,
    onOfflineOutput: (chunk) => offlineOutput.push(chunk),
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

async function mintDemoJwt(): Promise<string> {
  return stack.devIssuer!.mint({ sub: LOCAL.demoSubject });
}

describe('the local stack over HTTP', () => {
  it('vends the seed example with expiresAt converted from the emulator ExpireTime', async () => {
    const response = await fetch(`${stack.apiUrl}/v1/stream-tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await mintDemoJwt()}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ instanceIds: [FIRST, SECOND], deviceId: DEVICE }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await response.json()) as { tokens: Array<{ instanceId: string; expiresAt: string }> };
    expect(body.tokens.map((token) => token.instanceId)).toEqual([FIRST, SECOND]);

    const call = stack.emulator!.calls.at(-1)!;
    expect(call.outcome).toBe('Success');
    const expireTime = call.response!.Tokens![0]!.ExpireTime;
    const utc = new Date(Date.parse(`${expireTime.replace(' ', 'T')}+08:00`)).toISOString().replace('.000Z', 'Z');
    expect(body.tokens.map((token) => token.expiresAt)).toEqual([utc, utc]);
  });

  it('answers bad input with problem+json over HTTP', async () => {
    const response = await fetch(`${stack.apiUrl}/v1/stream-tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await mintDemoJwt()}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ instanceIds: ['someone-elses-phone'], deviceId: DEVICE }),
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({ code: 'instance_not_allowed', deniedInstanceIds: ['someone-elses-phone'] });
  });

  it('answers an empty POST body with 400 invalid_request, not 500', async () => {
    // serverless-offline delivers an empty body as `body: null`, which once reached Buffer.byteLength.
    const response = await fetch(`${stack.apiUrl}/v1/stream-tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await mintDemoJwt()}`, 'Content-Type': 'application/json' },
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'invalid_request' });
  });

  it('serves 404 and 405 as problem+json for routes the gateway passes through', async () => {
    const missing = await fetch(`${stack.apiUrl}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'not_found' });
    const wrongMethod = await fetch(`${stack.apiUrl}/healthz`, { method: 'POST' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET');
  });

  it('writes no JWT or stream token into the API output', () => {
    const output = offlineOutput.join('');
    expect(output).toContain('"message":"request"');
    expect(output).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+/);
    expect(output).not.toMatch(/"token"|Bearer /);
  });
});

describe('npm start with a bad setting', () => {
  it('stops at once with the message naming the variable, leaving nothing running', async () => {
    const started = Date.now();
    const ports = { apiPort: await freePort(), gsEmulatorPort: await freePort(), devIssuerPort: await freePort(), dynamodbPort: await freePort() };
    await expect(
      startLocalStack({ env: { PATH: process.env.PATH, STAGE: 'local', UPSTREAM_RATE_LIMIT: 'lots' }, demoPagePort: 0, ...ports }),
    ).rejects.toThrow('Invalid configuration: UPSTREAM_RATE_LIMIT must look like N/<seconds>s');
    expect(Date.now() - started).toBeLessThan(10_000);
    // Every stand-in it had started is stopped again: their ports are free.
    for (const port of Object.values(ports)) {
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    }
  });
});

describe('CORS in a real browser', () => {
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);

  it('lets the demo page on the allowed origin read stream tokens', async () => {
    const page = await browser!.newPage();
    await page.goto(stack.demoPageUrl);
    await page.click('#vend');
    await page.waitForFunction(STATUS_SETTLED, undefined, { timeout: 15_000 });
    expect(await page.textContent('#status')).toBe('200');
    const shown = JSON.parse((await page.textContent('#result')) ?? '{}') as { requestId: string; body: { tokens: unknown[] } };
    expect(shown.body.tokens).toHaveLength(2);
    // X-Request-Id is exposed to scripts by Access-Control-Expose-Headers.
    expect(shown.requestId).toMatch(/^[0-9a-f-]{36}$/);
    await page.close();
  });

  it('blocks a page on another origin from reading the API', async () => {
    const stranger = await startDemoPage(0, {
      apiUrl: stack.apiUrl,
      tokenUrl: `${stack.devIssuer!.url}token`,
      subject: LOCAL.demoSubject,
      instanceIds: LOCAL.demoInstanceIds,
      deviceId: DEVICE,
    });
    try {
      const page = await browser!.newPage();
      await page.goto(stranger.url);
      await page.click('#vend');
      await page.waitForFunction(STATUS_SETTLED, undefined, { timeout: 15_000 });
      expect(await page.textContent('#status')).toMatch(/^failed: /);
      expect(await page.textContent('#result')).toBe('');
      await page.close();
    } finally {
      await closeServer(stranger.server);
    }
  });
});
