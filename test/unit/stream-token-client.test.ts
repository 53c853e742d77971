import { describe, expect, it } from '@jest/globals';
import { Agent as HttpAgent, type AgentOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupAddress } from 'node:dns';
import { classifyApiCode, gsConnection } from '../../lib/tencent/stream-token-client';

/** The options a Node agent was built with (public at runtime, absent from @types/node). */
const agentOptions = (agent: HttpAgent) => (agent as HttpAgent & { options: AgentOptions }).options;

function resolveThrough(agent: HttpAgent, name: string): Promise<string> {
  const lookup = agentOptions(agent).lookup;
  if (!lookup) throw new Error('the agent has no lookup');
  return new Promise((resolve, reject) =>
    lookup(name, { all: true }, (error, addresses) => (error ? reject(error) : resolve((addresses as LookupAddress[])[0]?.address ?? ''))),
  );
}

describe('gsConnection: the SDK must always see a gs. host, since it signs with the first label as the service', () => {
  it('routes a local emulator address through gs.tencentcloudapi.com, keeping the port', async () => {
    const connection = gsConnection(new URL('http://127.0.0.1:4510'));
    expect(connection.endpoint).toBe('gs.tencentcloudapi.com:4510');
    expect(connection.protocol).toBe('http://');
    expect(connection.agent).not.toBeInstanceOf(HttpsAgent);
    expect(agentOptions(connection.agent).keepAlive).toBe(true);
    await expect(resolveThrough(connection.agent, 'gs.tencentcloudapi.com')).resolves.toBe('127.0.0.1');
  });

  it('routes an IPv6 literal without its brackets', async () => {
    const connection = gsConnection(new URL('http://[::1]:4510'));
    expect(connection.endpoint).toBe('gs.tencentcloudapi.com:4510');
    await expect(resolveThrough(connection.agent, 'gs.tencentcloudapi.com')).resolves.toBe('::1');
  });

  it('uses an https keep-alive agent for an https address that is not a gs. host', async () => {
    const connection = gsConnection(new URL('https://10.0.0.5'));
    expect(connection).toMatchObject({ endpoint: 'gs.tencentcloudapi.com', protocol: 'https://' });
    expect(connection.agent).toBeInstanceOf(HttpsAgent);
    await expect(resolveThrough(connection.agent, 'gs.tencentcloudapi.com')).resolves.toBe('10.0.0.5');
  });

  it.each([
    ['https://gs.tencentcloudapi.com', 'gs.tencentcloudapi.com'],
    ['https://gs.ap-guangzhou.tencentcloudapi.com', 'gs.ap-guangzhou.tencentcloudapi.com'],
    ['https://GS.tencentcloudapi.com:8443', 'gs.tencentcloudapi.com:8443'],
  ])('connects straight to %s', (url, endpoint) => {
    const connection = gsConnection(new URL(url));
    expect(connection.endpoint).toBe(endpoint);
    expect(connection.agent).toBeInstanceOf(HttpsAgent);
    expect(agentOptions(connection.agent).keepAlive).toBe(true);
    expect(agentOptions(connection.agent).lookup).toBeUndefined();
  });
});

describe('classifyApiCode', () => {
  it.each([
    ['RequestLimitExceeded', 'rate-limited'],
    ['RequestLimitExceeded.UinLimitExceeded', 'rate-limited'],
    ['RequestLimitExceeded.GlobalRegionUinLimitExceeded', 'rate-limited'],
    ['RequestLimitExceeded.IPLimitExceeded', 'rate-limited'],
    ['InternalError', 'transient'],
    ['InternalError.DbError', 'transient'],
    ['ServiceUnavailable', 'transient'],
    ['RequestSizeLimitExceeded', 'refused'],
    ['LimitExceeded', 'refused'],
    ['AuthFailure.SignatureFailure', 'refused'],
    ['AuthFailure.SignatureExpire', 'refused'],
    ['InvalidParameterValue', 'refused'],
    ['MissingParameter', 'refused'],
    ['UnknownParameter', 'refused'],
    ['FailedOperation', 'refused'],
    ['ResourceNotFound', 'refused'],
    ['ResourceUnavailable', 'refused'],
    ['UnauthorizedOperation', 'refused'],
    ['UnsupportedOperation', 'refused'],
    ['InvalidAction', 'refused'],
  ])('%s → %s', (code, kind) => {
    expect(classifyApiCode(code)).toBe(kind);
  });
});
