/**
 * A loopback stand-in for gs.tencentcloudapi.com, as far as Tencent's documents describe it, for
 * CreateCloudPhoneInstancesStreamToken only: TC3-HMAC-SHA256 verification, the 5-minute clock window, the
 * per-SecretId rate limit, parameter checks and the seed document's success shape, plus injectable faults.
 * It lives outside lib/ so it can never be bundled into the Lambda.
 *
 * Choices where Tencent's documents are silent (kept in one place so tests and readers agree):
 * - Every request the "service" processes gets HTTP 200 and the `{"Response": {...}}` envelope, errors included.
 * - A method other than POST gets HTTP 200 with `UnsupportedOperation`: the real endpoint also answers GET with
 *   an error envelope and accepts signed GETs, which the emulator does not implement; a path other than `/`
 *   gets a bare HTTP 404 (a gateway answer, not an API one).
 * - Order of checks: signature (malformed header, timestamp, clock window, scope, SecretId, signature), then
 *   action and version, then the rate limit (counted per SecretId, accepted requests only), then parameters.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { canonicalRequest, parseAuthorization, sha256Hex, signature, signingKey, stringToSign, utcDate } from './tc3';

export const GS_SERVICE = 'gs';
export const GS_ACTION = 'CreateCloudPhoneInstancesStreamToken';
export const GS_VERSION = '2019-11-18';

const CLOCK_WINDOW_MS = 5 * 60 * 1000;
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const DEFAULT_RENEWAL_HOURS = 2;
const BEIJING_OFFSET_MS = 8 * 60 * 60 * 1000;
/** What "syntactically plausible" means when `knownInstanceIds` is omitted. */
const PLAUSIBLE_INSTANCE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export interface SignalServer {
  TCPAddr: string;
  WSAddr: string;
  WSSAddr: string;
}

export interface CoturnServer {
  Addr: string;
  ISP: number;
}

/** The seed example's addresses. */
export const DEFAULT_SIGNAL_SERVER: SignalServer = {
  TCPAddr: 'nats://pstreama-pass-hzc.phone.tcloud.com:4432',
  WSAddr: 'nats://pstreama-pass-hzc.phone.tcloud.com:44912/nats',
  WSSAddr: 'wss://pstreama-pass-hzc.phone.tcloud.com:44913/nats',
};

export const DEFAULT_COTURN_SERVERS: CoturnServer[] = [
  { Addr: '101.67.33.168:3478', ISP: 2 },
  { Addr: '183.247.255.168:3478', ISP: 1 },
  { Addr: 'pstreama-pass-hzc.phone.tcloud.com:3478', ISP: 4 },
];

/** Faults for tests; `times` limits one to the next N calls, after which it clears itself. */
export type GsFault = (
  | { kind: 'error'; code: string; message?: string }
  | { kind: 'http'; status: number; body?: string }
  | { kind: 'non-json' }
  | { kind: 'delay'; ms: number }
  | { kind: 'hang' }
  | { kind: 'omit'; instanceIds: string[] }
  | { kind: 'extra-fields' }
) & { times?: number };

export interface GsEmulatorOptions {
  credentials: ReadonlyArray<{ secretId: string; secretKey: string }>;
  /** When omitted, every syntactically plausible instance id is known. */
  knownInstanceIds?: readonly string[];
  /** Requests per SecretId in a sliding window; default 20 per 1000 ms (the documented limit). */
  rateLimit?: { limit: number; windowMs: number };
  signalServer?: SignalServer;
  coturnServers?: CoturnServer[];
  /** Default 0 (ephemeral). The host is always 127.0.0.1. */
  port?: number;
  /** Called once per call when its outcome is decided (for `hang`, on arrival). */
  onCall?: (call: GsEmulatorCall) => void;
}

/** One arrival; `outcome` is 'pending' until answered: 'Success', an error code, `http <status>`, 'non-json' or 'hang'. */
export interface GsEmulatorCall {
  /** Arrival time, ms since the epoch. */
  at: number;
  action: string | undefined;
  secretId: string | undefined;
  instanceIds: string[];
  outcome: string;
  /** The `Response` object sent, when an envelope was sent. Holds tokens: for assertions only, never log it. */
  response?: GsResponse;
}

/** One entry of `Tokens`, in the seed document's shape. */
export interface GsToken {
  InstanceId: string;
  DeviceId: string;
  Token: string;
  ExpireTime: string;
  SignalServer: SignalServer;
  CoturnServers: CoturnServer[];
}

/** The inner object of the `{"Response": {...}}` envelope. */
export interface GsResponse {
  RequestId: string;
  Tokens?: GsToken[];
  Error?: { Code: string; Message: string };
  /** `extra-fields` adds members the documented shape does not have. */
  [extra: string]: unknown;
}

export interface GsEmulator {
  url: string;
  port: number;
  /** Arrival log, oldest first. */
  readonly calls: readonly GsEmulatorCall[];
  setFault(fault: GsFault | undefined): void;
  /** Clears the call log, the fault and the rate-limit windows. */
  reset(): void;
  /** Stops listening and destroys open sockets, including requests held by `hang`. */
  close(): Promise<void>;
}

interface ApiError {
  code: string;
  message: string;
}

const apiError = (code: string, message: string): ApiError => ({ code, message });

export async function startGsEmulator(options: GsEmulatorOptions): Promise<GsEmulator> {
  const secretKeys = new Map(options.credentials.map((c) => [c.secretId, c.secretKey]));
  const known = options.knownInstanceIds ? new Set(options.knownInstanceIds) : undefined;
  const rateLimit = options.rateLimit ?? { limit: 20, windowMs: 1000 };
  const signalServer = options.signalServer ?? DEFAULT_SIGNAL_SERVER;
  const coturnServers = options.coturnServers ?? DEFAULT_COTURN_SERVERS;

  const calls: GsEmulatorCall[] = [];
  const windows = new Map<string, number[]>();
  const timers = new Set<NodeJS.Timeout>();
  let fault: GsFault | undefined;
  let closed = false;

  /** The fault for this call, counting it against `times`. */
  const takeFault = (): GsFault | undefined => {
    const current = fault;
    if (current?.times !== undefined) {
      const left = current.times - 1;
      fault = left > 0 ? { ...current, times: left } : undefined;
    }
    return current;
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  /** Sliding-window log per SecretId; only accepted requests are counted. */
  const admit = (secretId: string, now: number): boolean => {
    const recent = (windows.get(secretId) ?? []).filter((t) => t > now - rateLimit.windowMs);
    const admitted = recent.length < rateLimit.limit;
    if (admitted) recent.push(now);
    windows.set(secretId, recent);
    return admitted;
  };

  /** The service's answer to a call that reached it: an API error or the tokens. */
  const serve = (headers: IncomingHttpHeaders, body: Buffer, now: number): ApiError | { tokens: GsToken[] } => {
    const auth = verifySignature(headers, body, now, secretKeys);
    if ('code' in auth) return auth;
    const action = header(headers, 'x-tc-action');
    const version = header(headers, 'x-tc-version');
    if (!action) return apiError('MissingParameter', 'The request is missing a required parameter `Action`.');
    if (!version) return apiError('MissingParameter', 'The request is missing a required parameter `Version`.');
    if (action !== GS_ACTION || version !== GS_VERSION) {
      return apiError('InvalidAction', `The requested action \`${action}\` does not exist in version \`${version}\`.`);
    }
    if (!admit(auth.secretId, now)) {
      return apiError('RequestLimitExceeded', `Requests exceed the frequency limit of ${rateLimit.limit} per ${rateLimit.windowMs} ms.`);
    }
    const params = validateParams(body, known);
    if ('code' in params) return params;
    const expireTime = beijingTime(now + params.renewalHours * 3600 * 1000);
    return {
      tokens: params.instanceIds.map((instanceId) => ({
        InstanceId: instanceId,
        DeviceId: params.deviceId,
        Token: Buffer.from(`${randomBytes(8).toString('hex')}&${instanceId}&${params.deviceId}`).toString('base64'),
        ExpireTime: expireTime,
        SignalServer: { ...signalServer },
        CoturnServers: coturnServers.map((server) => ({ ...server })),
      })),
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const call: GsEmulatorCall = {
      at: Date.now(),
      action: header(req.headers, 'x-tc-action'),
      secretId: parseAuthorization(header(req.headers, 'authorization'))?.secretId,
      instanceIds: [],
      outcome: 'pending',
    };
    const finish = (outcome: string) => {
      call.outcome = outcome;
      options.onCall?.(call);
    };
    const answer = (response: GsResponse, outcome: string) => {
      call.response = response;
      sendJson(res, { Response: response });
      finish(outcome);
    };
    const answerError = (error: ApiError) => answer({ Error: { Code: error.code, Message: error.message }, RequestId: randomUUID() }, error.code);

    if ((req.url ?? '/').split('?')[0] !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
      return;
    }
    calls.push(call);
    if (req.method !== 'POST') {
      req.resume();
      answerError(apiError('UnsupportedOperation', `The gs emulator implements POST with TC3-HMAC-SHA256 only, not ${req.method}.`));
      return;
    }
    const body = await readBody(req);
    if (!body) {
      answerError(apiError('RequestSizeLimitExceeded', `The request body exceeds ${MAX_BODY_BYTES} bytes.`));
      return;
    }
    call.instanceIds = peekInstanceIds(body);

    const current = takeFault();
    switch (current?.kind) {
      case 'http':
        res.writeHead(current.status, { 'Content-Type': 'text/html' });
        res.end(current.body ?? `<html><body><h1>${current.status}</h1><p>Injected gateway error</p></body></html>`);
        finish(`http ${current.status}`);
        return;
      case 'non-json':
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('Service temporarily unavailable, please try later.');
        finish('non-json');
        return;
      case 'hang':
        finish('hang');
        return;
      case 'error':
        answerError(apiError(current.code, current.message ?? `Injected fault: ${current.code}.`));
        return;
      case 'delay':
        await sleep(current.ms);
        if (closed) return;
        break;
    }

    const result = serve(req.headers, body, Date.now());
    if ('code' in result) {
      answerError(result);
      return;
    }
    let tokens = result.tokens;
    let extra: Record<string, unknown> = {};
    if (current?.kind === 'omit') {
      const omit = new Set(current.instanceIds);
      tokens = tokens.filter((token) => !omit.has(token.InstanceId));
    } else if (current?.kind === 'extra-fields') {
      tokens = tokens.map((token) => ({ ...token, StreamRegion: 'ap-guangzhou', Debug: { Node: 'emu-1' } }));
      extra = { ExtraInfo: { Note: 'a field the documented shape does not have' } };
    }
    answer({ Tokens: tokens, ...extra, RequestId: randomUUID() }, 'Success');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.destroyed) return; // the caller went away mid-request (its own timeout): nobody to answer
      console.error('gs emulator: unexpected failure', error);
      if (!res.headersSent) sendJson(res, { Response: { Error: { Code: 'InternalError', Message: 'Emulator failure.' }, RequestId: randomUUID() } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    calls,
    setFault(next) {
      fault = next;
    },
    reset() {
      calls.length = 0;
      windows.clear();
      fault = undefined;
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await stopped;
    },
  };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function sendJson(res: ServerResponse, payload: unknown): void {
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(payload));
}

/** The body, or undefined when it is over the documented 10 MB limit. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  return size <= MAX_BODY_BYTES ? Buffer.concat(chunks) : undefined;
}

/** For the call log only: the instance ids of a body, whatever else is wrong with it. */
function peekInstanceIds(body: Buffer): string[] {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const ids = (parsed as { InstanceIds?: unknown } | null)?.InstanceIds;
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}

/** `YYYY-MM-DD HH:MM:SS` in Beijing time (UTC+8, no DST), whatever the machine's time zone. */
function beijingTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000 + BEIJING_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

function verifySignature(
  headers: IncomingHttpHeaders,
  body: Buffer,
  now: number,
  secretKeys: ReadonlyMap<string, string>,
): ApiError | { secretId: string } {
  const auth = parseAuthorization(header(headers, 'authorization'));
  if (!auth) return apiError('AuthFailure.InvalidAuthorization', 'The Authorization header is not a TC3-HMAC-SHA256 authorization.');
  const rawTimestamp = header(headers, 'x-tc-timestamp');
  if (rawTimestamp === undefined) return apiError('MissingParameter', 'The request is missing a required parameter `Timestamp`.');
  if (!/^\d{1,12}$/.test(rawTimestamp)) return apiError('InvalidParameter', 'X-TC-Timestamp must be Unix seconds.');
  const timestamp = Number(rawTimestamp);
  if (Math.abs(now - timestamp * 1000) > CLOCK_WINDOW_MS) {
    return apiError('AuthFailure.SignatureExpire', 'The signature has expired: X-TC-Timestamp is more than 5 minutes from the server time.');
  }
  if (!auth.signedHeaders.includes('content-type') || !auth.signedHeaders.includes('host')) {
    return apiError('AuthFailure.InvalidAuthorization', 'SignedHeaders must include content-type and host.');
  }
  const signed: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = header(headers, name);
    if (value === undefined) return apiError('AuthFailure.InvalidAuthorization', `The signed header ${name} is missing.`);
    // The Node SDK signs the host without its port, whatever port it connects to.
    signed[name] = name === 'host' ? hostWithoutPort(value) : value;
  }
  const secretKey = secretKeys.get(auth.secretId);
  if (secretKey === undefined) return apiError('AuthFailure.SecretIdNotFound', 'The SecretId is not found, please ensure that your SecretId is correct.');

  const signatureFailure = apiError(
    'AuthFailure.SignatureFailure',
    'The provided credentials could not be validated. Please check your signature is correct.',
  );
  // A wrong scope is reported like a wrong signature: the server signs with the scope it expects.
  if (auth.service !== GS_SERVICE || auth.date !== utcDate(timestamp)) return signatureFailure;
  const canonical = canonicalRequest({
    method: 'POST',
    path: '/',
    query: '',
    headers: signed,
    signedHeaders: auth.signedHeaders,
    payloadHash: sha256Hex(body),
  });
  const expected = signature(signingKey(secretKey, auth.date, GS_SERVICE), stringToSign(timestamp, auth.date, GS_SERVICE, sha256Hex(canonical)));
  return timingSafeEqual(Buffer.from(expected), Buffer.from(auth.signature)) ? { secretId: auth.secretId } : signatureFailure;
}

function hostWithoutPort(host: string): string {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return host;
  }
}

interface StreamTokenParams {
  instanceIds: string[];
  deviceId: string;
  renewalHours: number;
}

const ALLOWED_PARAMS = new Set(['InstanceIds', 'DeviceId', 'RenewalTime']);

function validateParams(body: Buffer, known: ReadonlySet<string> | undefined): ApiError | StreamTokenParams {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return apiError('InvalidParameter', 'The request body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return apiError('InvalidParameter', 'The request body must be a JSON object.');
  }
  const params = parsed as Record<string, unknown>;
  const unknown = Object.keys(params).find((key) => !ALLOWED_PARAMS.has(key));
  if (unknown !== undefined) return apiError('UnknownParameter', `The parameter \`${unknown}\` is not recognized.`);

  const { InstanceIds: instanceIds, DeviceId: deviceId, RenewalTime: renewalTime } = params;
  if (instanceIds === undefined) return apiError('MissingParameter', 'The request is missing a required parameter `InstanceIds`.');
  if (deviceId === undefined) return apiError('MissingParameter', 'The request is missing a required parameter `DeviceId`.');
  if (!Array.isArray(instanceIds) || !instanceIds.every((id): id is string => typeof id === 'string')) {
    return apiError('InvalidParameter', 'InstanceIds must be an array of strings.');
  }
  if (typeof deviceId !== 'string') return apiError('InvalidParameter', 'DeviceId must be a string.');
  if (renewalTime !== undefined && !(typeof renewalTime === 'number' && Number.isInteger(renewalTime) && renewalTime > 0)) {
    return apiError('InvalidParameter', 'RenewalTime must be a positive integer.');
  }
  if (instanceIds.length === 0) return apiError('InvalidParameterValue', 'InstanceIds must not be empty.');
  if (deviceId === '') return apiError('InvalidParameterValue', 'DeviceId must not be empty.');
  const unknownInstance = instanceIds.find((id) => (known ? !known.has(id) : !PLAUSIBLE_INSTANCE_ID.test(id)));
  if (unknownInstance !== undefined) return apiError('InvalidParameterValue', `The instance \`${unknownInstance}\` does not exist.`);

  return { instanceIds, deviceId, renewalHours: typeof renewalTime === 'number' ? renewalTime : DEFAULT_RENEWAL_HOURS };
}
