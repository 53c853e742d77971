import { describe, expect, it } from '@jest/globals';
import { createTokenReuse } from '../../lib/tencent/token-reuse';
import type { StreamTokenClient, StreamTokenRequest, UpstreamStreamToken } from '../../lib/tencent/types';

const START = Date.parse('2026-12-03T10:00:00Z');

/** Beijing wall-clock text for an instant (the upstream's ExpireTime format). */
const beijing = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');

/** An upstream stand-in that records each call and issues distinct tokens; lifetimes follow RenewalTime. */
function recordingUpstream(clock: { now: number }) {
  const calls: StreamTokenRequest[] = [];
  let serial = 0;
  let release: () => void = () => undefined;
  let gate: Promise<void> | undefined;
  const client: StreamTokenClient = {
    async createStreamTokens(request) {
      calls.push(request);
      if (gate) await gate;
      const tokens: UpstreamStreamToken[] = request.instanceIds.map((instanceId) => ({
        InstanceId: instanceId,
        DeviceId: request.deviceId,
        Token: `token-${++serial}`,
        ExpireTime: beijing(clock.now + request.renewalHours * 3600_000),
        SignalServer: { TCPAddr: 't', WSAddr: 'w', WSSAddr: 's' },
        CoturnServers: [],
      }));
      return { tokens, requestId: `req-${calls.length}`, attempts: 1 };
    },
  };
  return {
    client,
    calls,
    hold() {
      gate = new Promise((resolve) => (release = resolve));
    },
    release: () => {
      gate = undefined;
      release();
    },
  };
}

const request = (instanceIds: string[], renewalHours = 2): StreamTokenRequest => ({ instanceIds, deviceId: 'dev-1', renewalHours });

describe('createTokenReuse', () => {
  it('lets 100 identical concurrent requests share one upstream call', async () => {
    const clock = { now: START };
    const upstream = recordingUpstream(clock);
    const reuse = createTokenReuse(upstream.client, { windowMs: 0, batchSize: 50, now: () => clock.now });
    upstream.hold();
    const pending = Array.from({ length: 100 }, () => reuse.createStreamTokens('acme|alice', request(['a', 'b'])));
    upstream.release();
    const results = await Promise.all(pending);
    expect(upstream.calls).toHaveLength(1);
    expect(new Set(results.map((result) => result.tokens[0]?.Token))).toEqual(new Set(['token-1']));
    expect(results.filter((result) => result.upstreamCalls === 1)).toHaveLength(1);
  });

  it('does not share a call between different callers', async () => {
    const clock = { now: START };
    const upstream = recordingUpstream(clock);
    const reuse = createTokenReuse(upstream.client, { windowMs: 30_000, batchSize: 50, now: () => clock.now });
    upstream.hold();
    const pending = [reuse.createStreamTokens('acme|alice', request(['a'])), reuse.createStreamTokens('acme|bob', request(['a']))];
    upstream.release();
    const [alice, bob] = await Promise.all(pending);
    expect(upstream.calls).toHaveLength(2);
    expect(alice?.tokens[0]?.Token).not.toBe(bob?.tokens[0]?.Token);
  });

  it('reuses a token issued seconds ago, unchanged, within the window', async () => {
    const clock = { now: START };
    const upstream = recordingUpstream(clock);
    const reuse = createTokenReuse(upstream.client, { windowMs: 30_000, batchSize: 50, now: () => clock.now });
    const first = await reuse.createStreamTokens('acme|alice', request(['a']));
    clock.now += 29_000;
    const second = await reuse.createStreamTokens('acme|alice', request(['a']));
    expect(upstream.calls).toHaveLength(1);
    expect(second.tokens).toEqual(first.tokens);
    expect(second.reusedCount).toBe(1);
    clock.now += 1_000;
    await reuse.createStreamTokens('acme|alice', request(['a']));
    expect(upstream.calls).toHaveLength(2);
  });

  it('never reuses past 10 % of the token life', async () => {
    const clock = { now: START };
    const upstream = recordingUpstream(clock);
    // A one-hour token may be reused for 6 minutes at most, even with a 1-hour window configured.
    const reuse = createTokenReuse(upstream.client, { windowMs: 3_600_000, batchSize: 50, now: () => clock.now });
    await reuse.createStreamTokens('acme|alice', request(['a'], 1));
    clock.now += 359_000;
    await reuse.createStreamTokens('acme|alice', request(['a'], 1));
    expect(upstream.calls).toHaveLength(1);
    clock.now += 1_000;
    await reuse.createStreamTokens('acme|alice', request(['a'], 1));
    expect(upstream.calls).toHaveLength(2);
  });

  it('asks upstream only for the instances it cannot reuse, and keys reuse by device and hours', async () => {
    const clock = { now: START };
    const upstream = recordingUpstream(clock);
    const reuse = createTokenReuse(upstream.client, { windowMs: 30_000, batchSize: 50, now: () => clock.now });
    await reuse.createStreamTokens('acme|alice', request(['a']));
    const mixed = await reuse.createStreamTokens('acme|alice', request(['a', 'b']));
    expect(upstream.calls[1]?.instanceIds).toEqual(['b']);
    expect(mixed.tokens.map((token) => token.InstanceId).sort()).toEqual(['a', 'b']);
    await reuse.createStreamTokens('acme|alice', request(['a'], 3));
    await reuse.createStreamTokens('acme|alice', { instanceIds: ['a'], deviceId: 'dev-2', renewalHours: 2 });
    expect(upstream.calls).toHaveLength(4);
  });

  it('splits a request larger than the upstream batch size into batches', async () => {
    const clock = { now: START };
    const upstream = recordingUpstream(clock);
    const reuse = createTokenReuse(upstream.client, { windowMs: 0, batchSize: 2, now: () => clock.now });
    const result = await reuse.createStreamTokens('acme|alice', request(['a', 'b', 'c', 'd', 'e']));
    expect(upstream.calls.map((call) => call.instanceIds)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(result.tokens).toHaveLength(5);
    expect(result.upstreamCalls).toBe(3);
  });

  it('forgets the oldest tokens beyond its size bound', async () => {
    const clock = { now: START };
    const upstream = recordingUpstream(clock);
    const reuse = createTokenReuse(upstream.client, { windowMs: 30_000, batchSize: 50, now: () => clock.now, maxEntries: 2 });
    await reuse.createStreamTokens('acme|alice', request(['a']));
    await reuse.createStreamTokens('acme|alice', request(['b']));
    await reuse.createStreamTokens('acme|alice', request(['c']));
    await reuse.createStreamTokens('acme|alice', request(['a']));
    expect(upstream.calls).toHaveLength(4);
  });

  it('passes an upstream failure to every request sharing the call, then calls again', async () => {
    const calls: number[] = [];
    const failing: StreamTokenClient = {
      async createStreamTokens() {
        calls.push(1);
        throw new Error('upstream down');
      },
    };
    const reuse = createTokenReuse(failing, { windowMs: 30_000, batchSize: 50 });
    const results = await Promise.allSettled([reuse.createStreamTokens('k', request(['a'])), reuse.createStreamTokens('k', request(['a']))]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    await expect(reuse.createStreamTokens('k', request(['a']))).rejects.toThrow('upstream down');
    expect(calls).toHaveLength(2);
  });
});
