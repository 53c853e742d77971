import { UpstreamError } from './errors';
import { parseBeijingTime, toRfc3339Seconds } from './beijing-time';
import type { UpstreamStreamToken } from './tencent/types';

/** The public shape of one token (api-contract.md). Built field by field: nothing else reaches the caller. */
export interface StreamToken {
  instanceId: string;
  deviceId: string;
  token: string;
  expiresAt: string;
  expiresIn: number;
  signalServer: { tcpAddr: string; wsAddr: string; wssAddr: string };
  turnServers: Array<{ addr: string; isp: number }>;
}

export interface StreamTokenFailure {
  instanceId: string;
  code: 'not_issued';
}

export interface StreamTokensResponse {
  serverTime: string;
  tokens: StreamToken[];
  failures?: StreamTokenFailure[];
}

const CLOCK_SKEW_SECONDS = 300;

export interface ShapeInput {
  requestedInstanceIds: readonly string[];
  deviceId: string;
  renewalHours: number;
  upstreamTokens: readonly UpstreamStreamToken[];
  now: Date;
}

/**
 * Turns the upstream's tokens into the contract's response, in request order. An instance the upstream
 * answered without a token (or with one for another device, or already expired) becomes a `failures`
 * entry. `expiresAt` is never later than now + the hours we asked for (plus the 5 minutes of clock skew
 * Tencent itself tolerates): a token cannot outlive the lifetime policy even if the upstream says so.
 */
export function shapeStreamTokensResponse(input: ShapeInput): StreamTokensResponse {
  const nowSeconds = Math.floor(input.now.getTime() / 1000);
  const serverTime = new Date(nowSeconds * 1000);
  const latestAllowedMs = (nowSeconds + input.renewalHours * 3600 + CLOCK_SKEW_SECONDS) * 1000;
  const byInstance = new Map(input.upstreamTokens.map((token) => [token.InstanceId, token]));

  const tokens: StreamToken[] = [];
  const failures: StreamTokenFailure[] = [];
  for (const instanceId of input.requestedInstanceIds) {
    const upstream = byInstance.get(instanceId);
    if (!upstream || upstream.DeviceId !== input.deviceId || upstream.Token === '') {
      failures.push({ instanceId, code: 'not_issued' });
      continue;
    }
    const expireTime = parseBeijingTime(upstream.ExpireTime);
    if (!expireTime) throw new UpstreamError({ cause: new Error('upstream ExpireTime is not YYYY-MM-DD HH:MM:SS') });
    const expiresAtMs = Math.min(expireTime.getTime(), latestAllowedMs);
    const expiresIn = Math.floor((expiresAtMs - serverTime.getTime()) / 1000);
    if (expiresIn <= 0) {
      failures.push({ instanceId, code: 'not_issued' });
      continue;
    }
    tokens.push({
      instanceId,
      deviceId: input.deviceId,
      token: upstream.Token,
      expiresAt: toRfc3339Seconds(new Date(expiresAtMs)),
      expiresIn,
      signalServer: {
        tcpAddr: upstream.SignalServer.TCPAddr,
        wsAddr: upstream.SignalServer.WSAddr,
        wssAddr: upstream.SignalServer.WSSAddr,
      },
      turnServers: upstream.CoturnServers.map((server) => ({ addr: server.Addr, isp: server.ISP })),
    });
  }
  return failures.length > 0
    ? { serverTime: toRfc3339Seconds(serverTime), tokens, failures }
    : { serverTime: toRfc3339Seconds(serverTime), tokens };
}
