import { describe, expect, it } from '@jest/globals';
import { UpstreamError } from '../../lib/errors';
import { shapeStreamTokensResponse } from '../../lib/stream-tokens-response';
import type { UpstreamStreamToken } from '../../lib/tencent/types';

const FIRST = 'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac';
const SECOND = 'RK8S37P1402445261_95de5774-0f9f-4cc2-aa67-58d41378d209';
const DEVICE = 'dc1079f85676';
const NOW = new Date('2025-01-08T02:32:07.400Z'); // 10:32:07 Beijing time

function upstreamToken(instanceId: string, overrides: Partial<UpstreamStreamToken> = {}): UpstreamStreamToken {
  return {
    InstanceId: instanceId,
    DeviceId: DEVICE,
    Token: `token-for-${instanceId}`,
    ExpireTime: '2025-01-08 12:32:07',
    SignalServer: {
      TCPAddr: 'nats://pstreama-pass-hzc.phone.tcloud.com:4432',
      WSAddr: 'nats://pstreama-pass-hzc.phone.tcloud.com:44912/nats',
      WSSAddr: 'wss://pstreama-pass-hzc.phone.tcloud.com:44913/nats',
    },
    CoturnServers: [
      { Addr: '101.67.33.168:3478', ISP: 2 },
      { Addr: '183.247.255.168:3478', ISP: 1 },
    ],
    ...overrides,
  };
}

describe('shapeStreamTokensResponse', () => {
  it('renders the seed example in the contract shape with a UTC expiry', () => {
    const response = shapeStreamTokensResponse({
      requestedInstanceIds: [FIRST],
      deviceId: DEVICE,
      renewalHours: 2,
      upstreamTokens: [upstreamToken(FIRST)],
      now: NOW,
    });
    expect(response).toEqual({
      serverTime: '2025-01-08T02:32:07Z',
      tokens: [
        {
          instanceId: FIRST,
          deviceId: DEVICE,
          token: `token-for-${FIRST}`,
          expiresAt: '2025-01-08T04:32:07Z',
          expiresIn: 7200,
          signalServer: {
            tcpAddr: 'nats://pstreama-pass-hzc.phone.tcloud.com:4432',
            wsAddr: 'nats://pstreama-pass-hzc.phone.tcloud.com:44912/nats',
            wssAddr: 'wss://pstreama-pass-hzc.phone.tcloud.com:44913/nats',
          },
          turnServers: [
            { addr: '101.67.33.168:3478', isp: 2 },
            { addr: '183.247.255.168:3478', isp: 1 },
          ],
        },
      ],
    });
  });

  it('returns tokens in request order whatever order the upstream used', () => {
    const response = shapeStreamTokensResponse({
      requestedInstanceIds: [SECOND, FIRST],
      deviceId: DEVICE,
      renewalHours: 2,
      upstreamTokens: [upstreamToken(FIRST), upstreamToken(SECOND)],
      now: NOW,
    });
    expect(response.tokens.map((token) => token.instanceId)).toEqual([SECOND, FIRST]);
    expect(response.failures).toBeUndefined();
  });

  it('lists an instance the upstream skipped as not_issued', () => {
    const response = shapeStreamTokensResponse({
      requestedInstanceIds: [FIRST, SECOND],
      deviceId: DEVICE,
      renewalHours: 2,
      upstreamTokens: [upstreamToken(FIRST)],
      now: NOW,
    });
    expect(response.tokens.map((token) => token.instanceId)).toEqual([FIRST]);
    expect(response.failures).toEqual([{ instanceId: SECOND, code: 'not_issued' }]);
  });

  it('treats a token for another device, an empty token or an already expired one as not issued', () => {
    const response = shapeStreamTokensResponse({
      requestedInstanceIds: [FIRST, SECOND, 'third'],
      deviceId: DEVICE,
      renewalHours: 2,
      upstreamTokens: [
        upstreamToken(FIRST, { DeviceId: 'someone-else' }),
        upstreamToken(SECOND, { Token: '' }),
        upstreamToken('third', { ExpireTime: '2025-01-08 10:32:07' }),
      ],
      now: NOW,
    });
    expect(response.tokens).toEqual([]);
    expect(response.failures?.map((failure) => failure.instanceId)).toEqual([FIRST, SECOND, 'third']);
  });

  it('ignores tokens for instances nobody asked for', () => {
    const response = shapeStreamTokensResponse({
      requestedInstanceIds: [FIRST],
      deviceId: DEVICE,
      renewalHours: 2,
      upstreamTokens: [upstreamToken(FIRST), upstreamToken('not-requested')],
      now: NOW,
    });
    expect(JSON.stringify(response)).not.toContain('not-requested');
  });

  it('caps an expiry later than the requested lifetime (plus clock skew) at that lifetime', () => {
    const response = shapeStreamTokensResponse({
      requestedInstanceIds: [FIRST],
      deviceId: DEVICE,
      renewalHours: 1,
      upstreamTokens: [upstreamToken(FIRST, { ExpireTime: '2025-01-09 10:32:07' })],
      now: NOW,
    });
    expect(response.tokens[0]?.expiresAt).toBe('2025-01-08T03:37:07Z');
    expect(response.tokens[0]?.expiresIn).toBe(3600 + 300);
  });

  it('refuses an ExpireTime that is not in the documented format as a malformed upstream answer', () => {
    expect(() =>
      shapeStreamTokensResponse({
        requestedInstanceIds: [FIRST],
        deviceId: DEVICE,
        renewalHours: 2,
        upstreamTokens: [upstreamToken(FIRST, { ExpireTime: '2025-01-08T12:32:07+08:00' })],
        now: NOW,
      }),
    ).toThrow(UpstreamError);
  });
});
