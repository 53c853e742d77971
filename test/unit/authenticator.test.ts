import { beforeAll, describe, expect, it } from '@jest/globals';
import type { JWTPayload } from 'jose';
import { createAuthenticator, type AuthenticatorOptions } from '../../lib/auth/authenticator';
import { issuerSchema, type IssuerConfig } from '../../lib/auth/issuer-config';
import { InsufficientScopeError } from '../../lib/errors';
import {
  createEcKey,
  createRsaKey,
  expectUnauthenticated,
  hs256Token,
  jwksOf,
  publicKeySecrets,
  rejectionOf,
  signToken,
  unsecuredToken,
  withPayload,
  type TestKey,
} from '../helpers/jwt';

const NOW = new Date('2026-12-03T10:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const ISSUER = 'https://login.acme.example/';
const AUDIENCE = 'cloudphone-stream-api';
const INSTANCE = 'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac';

let rsa: TestKey;
let ec: TestKey;
let outsider: TestKey;

beforeAll(async () => {
  [rsa, ec, outsider] = await Promise.all([createRsaKey('rsa-1'), createEcKey('ec-1'), createRsaKey('rsa-1')]);
});

function acme(overrides: Record<string, unknown> = {}): IssuerConfig {
  return issuerSchema.parse({
    name: 'acme',
    issuer: ISSUER,
    audiences: [AUDIENCE],
    jwks: jwksOf(rsa, ec),
    algorithms: ['RS256', 'ES256'],
    requiredScopes: ['cloudphone:stream'],
    instancesClaim: 'cloudphone_instances',
    deviceClaim: 'device_id',
    ...overrides,
  });
}

function claims(overrides: JWTPayload = {}): JWTPayload {
  return { iss: ISSUER, aud: AUDIENCE, sub: 'alice', scope: 'cloudphone:stream', iat: NOW_S, exp: NOW_S + 3600, ...overrides };
}

function authenticate(token: string, issuer = acme(), options: AuthenticatorOptions = {}) {
  return createAuthenticator([issuer], { now: () => NOW, ...options }).authenticate(`Bearer ${token}`);
}

describe('known answer', () => {
  // Generated once with jose: fixed ES256 key, iat 2026-12-03T10:00:00Z, exp one hour later.
  const publicJwk = {
    kty: 'EC',
    crv: 'P-256',
    x: 'pcM1SckJebPwf0VQeVo7dV7du1nhStpB3c77em2zhW4',
    y: 'fED4JM3E4z9gl2LoHMauBwVmxpUR3NgWev0B6hS21is',
    kid: 'kat-es256',
    alg: 'ES256',
    use: 'sig',
  };
  const token =
    'eyJhbGciOiJFUzI1NiIsImtpZCI6ImthdC1lczI1NiIsInR5cCI6IkpXVCJ9.' +
    'eyJzY29wZSI6Im9wZW5pZCBjbG91ZHBob25lOnN0cmVhbSIsImNsb3VkcGhvbmVfaW5zdGFuY2VzIjpbIlJLOFMzN1AxNDAyNDQ1MjYxXzNmODZkNmY1LTJkYjktNDkwMy1hNzBkLTg4OTk4N2M5YjJhYyJdLCJkZXZpY2VfaWQiOiJkYzEwNzlmODU2NzYiLCJpc3MiOiJodHRwczovL2xvZ2luLmFjbWUuZXhhbXBsZS8iLCJhdWQiOiJjbG91ZHBob25lLXN0cmVhbS1hcGkiLCJzdWIiOiJhbGljZSIsImlhdCI6MTc5NjI5MjAwMCwiZXhwIjoxNzk2Mjk1NjAwfQ.' +
    'CW2aYloW8euUi3C2g1FZXBRK4RNhK60mSPnt1rYRAzTHVogvg1MFN97H56_nvR9P7K9pEfb3NUqvXdtku7vx7Q';
  const issuer = () => acme({ jwks: { keys: [publicJwk] }, algorithms: ['ES256'] });

  it('gives exactly this Caller at the frozen clock', async () => {
    await expect(authenticate(token, issuer())).resolves.toEqual({
      issuerName: 'acme',
      issuer: ISSUER,
      subject: 'alice',
      scopes: ['openid', 'cloudphone:stream'],
      claimedInstanceIds: [INSTANCE],
      deviceId: 'dc1079f85676',
    });
  });

  it('is expired once exp plus the 30 s tolerance has passed', async () => {
    const afterExpiry = new Date('2026-12-03T11:00:30Z');
    await expectUnauthenticated(authenticate(token, issuer(), { now: () => afterExpiry }), 'token expired');
  });
});

describe('valid tokens', () => {
  it('accepts RS256 and ES256', async () => {
    for (const key of [rsa, ec]) {
      await expect(authenticate(await signToken(key, claims()))).resolves.toMatchObject({ issuerName: 'acme', subject: 'alice' });
    }
  });

  it('accepts a lower- or upper-case scheme', async () => {
    const token = await signToken(ec, claims());
    const authenticator = createAuthenticator([acme()], { now: () => NOW });
    await expect(authenticator.authenticate(`bearer ${token}`)).resolves.toMatchObject({ subject: 'alice' });
    await expect(authenticator.authenticate(`BEARER ${token}`)).resolves.toMatchObject({ subject: 'alice' });
  });

  it('accepts any one of several audiences, as a string or in an array', async () => {
    const issuer = acme({ audiences: ['other-api', AUDIENCE] });
    await expect(authenticate(await signToken(ec, claims()), issuer)).resolves.toBeDefined();
    await expect(authenticate(await signToken(ec, claims({ aud: ['x', AUDIENCE] })), issuer)).resolves.toBeDefined();
  });

  it('uses a token without kid when exactly one key fits its algorithm', async () => {
    await expect(authenticate(await signToken(ec, claims(), { kid: undefined }))).resolves.toBeDefined();
  });
});

describe('time claims', () => {
  it.each([
    ['31 s ago', -31],
    ['exactly 30 s ago', -30],
  ])('rejects exp %s', async (_label, offset) => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ exp: NOW_S + offset }))), 'token expired');
  });

  it('accepts exp within the clock tolerance', async () => {
    await expect(authenticate(await signToken(rsa, claims({ exp: NOW_S - 29 })))).resolves.toBeDefined();
  });

  it('honours a custom tolerance', async () => {
    const token = await signToken(rsa, claims({ exp: NOW_S - 1 }));
    await expectUnauthenticated(authenticate(token, acme(), { clockToleranceSeconds: 0 }), 'token expired');
  });

  it('rejects nbf beyond the tolerance and accepts it within', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ nbf: NOW_S + 31 }))), 'token not yet valid');
    await expect(authenticate(await signToken(rsa, claims({ nbf: NOW_S + 29 })))).resolves.toBeDefined();
  });

  it('requires exp: a token without one would open cloud phones forever', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ exp: undefined }))), 'token lacks the "exp" claim');
  });

  it('rejects a non-numeric exp', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ exp: 'tomorrow' as unknown as number }))), 'token claims invalid');
  });
});

describe('issuer and audience', () => {
  it('rejects an unknown or absent issuer', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ iss: 'https://evil.example/' }))), 'issuer not accepted');
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ iss: undefined }))), 'issuer not accepted');
  });

  it('matches the issuer exactly (no trailing-slash leniency)', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ iss: 'https://login.acme.example' }))), 'issuer not accepted');
  });

  it("does not accept one issuer's key for another issuer's tokens", async () => {
    const globex = acme({ name: 'globex', issuer: 'https://globex.example/', jwks: jwksOf(ec) });
    const authenticator = createAuthenticator([acme(), globex], { now: () => NOW });
    const token = await signToken(rsa, claims({ iss: 'https://globex.example/' }));
    await expectUnauthenticated(authenticator.authenticate(`Bearer ${token}`), 'unknown signing key');
  });

  it('rejects a wrong or absent audience', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ aud: 'another-api' }))), 'audience not accepted');
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ aud: undefined }))), 'token lacks the "aud" claim');
  });
});

describe('algorithms and keys', () => {
  it('rejects alg none', async () => {
    await expectUnauthenticated(authenticate(unsecuredToken(claims())), 'algorithm not accepted');
    await expectUnauthenticated(authenticate(unsecuredToken(claims(), { kid: rsa.kid })), 'algorithm not accepted');
  });

  it('rejects HS256 signed with the RSA public key (PEM or JWK bytes) as the HMAC secret', async () => {
    const { pem, jwkJson } = await publicKeySecrets(rsa);
    for (const secret of [pem, jwkJson]) {
      const token = await hs256Token(claims(), secret, { kid: rsa.kid });
      await expectUnauthenticated(authenticate(token), 'algorithm not accepted');
    }
  });

  it('rejects RS256 when the issuer allows only ES256', async () => {
    const token = await signToken(rsa, claims());
    await expectUnauthenticated(authenticate(token, acme({ algorithms: ['ES256'] })), 'algorithm not accepted');
  });

  it('rejects an unknown kid', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims(), { kid: 'rotated-away' })), 'unknown signing key');
  });

  it('rejects a token without kid when several keys fit', async () => {
    const second = await createRsaKey('rsa-2');
    const token = await signToken(rsa, claims(), { kid: undefined });
    await expectUnauthenticated(authenticate(token, acme({ jwks: jwksOf(rsa, second) })), 'token must name its signing key (kid)');
  });

  it('rejects a tampered payload', async () => {
    const token = withPayload(await signToken(rsa, claims()), claims({ sub: 'mallory' }));
    await expectUnauthenticated(authenticate(token), 'signature invalid');
  });

  it("rejects a signature by another key under the issuer's kid", async () => {
    await expectUnauthenticated(authenticate(await signToken(outsider, claims())), 'signature invalid');
  });

  it('rejects an unknown critical header', async () => {
    const token = await signToken(rsa, claims(), { crit: ['x-unknown'], 'x-unknown': true });
    await expectUnauthenticated(authenticate(token), 'token uses an unsupported feature');
  });
});

describe('subject', () => {
  it('requires a non-empty string subject', async () => {
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ sub: undefined }))), 'token lacks the "sub" claim');
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ sub: '' }))), 'token has a malformed "sub" claim');
    await expectUnauthenticated(
      authenticate(await signToken(rsa, claims({ sub: 42 as unknown as string }))),
      'token has a malformed "sub" claim',
    );
  });

  it('accepts a subject of up to 255 UTF-8 bytes and rejects a longer one, counted in bytes, not characters', async () => {
    await expect(authenticate(await signToken(rsa, claims({ sub: 'a'.repeat(255) })))).resolves.toMatchObject({ subject: 'a'.repeat(255) });
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ sub: 'a'.repeat(256) }))), 'token has a malformed "sub" claim');
    // 86 characters of 3 bytes each: 258 bytes. The 1100-character subject of the review went past DynamoDB's 1024-byte key limit.
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ sub: '用'.repeat(86) }))), 'token has a malformed "sub" claim');
    await expectUnauthenticated(authenticate(await signToken(rsa, claims({ sub: 'x'.repeat(1100) }))), 'token has a malformed "sub" claim');
  });

  it('reads the configured subject claim', async () => {
    const issuer = acme({ subjectClaim: 'oid' });
    await expect(authenticate(await signToken(rsa, claims({ oid: 'u-123' })), issuer)).resolves.toMatchObject({ subject: 'u-123' });
    await expectUnauthenticated(authenticate(await signToken(rsa, claims()), issuer), 'token lacks the "oid" claim');
  });
});

describe('scopes', () => {
  it.each<[string, JWTPayload, string[]]>([
    ['a scope string', { scope: 'openid  cloudphone:stream' }, ['openid', 'cloudphone:stream']],
    ['an scp array', { scope: undefined, scp: ['cloudphone:stream', 'profile'] }, ['cloudphone:stream', 'profile']],
    ['an scp string', { scope: undefined, scp: 'cloudphone:stream profile' }, ['cloudphone:stream', 'profile']],
    ['both, merged', { scope: 'cloudphone:stream', scp: ['profile', 'cloudphone:stream'] }, ['cloudphone:stream', 'profile']],
  ])('reads %s', async (_label, overrides, scopes) => {
    await expect(authenticate(await signToken(ec, claims(overrides)))).resolves.toMatchObject({ scopes });
  });

  it('answers 403 insufficient_scope naming the required scopes', async () => {
    const error = await rejectionOf(authenticate(await signToken(ec, claims({ scope: 'openid' }))));
    expect(error).toBeInstanceOf(InsufficientScopeError);
    const insufficient = error as InsufficientScopeError;
    expect(insufficient.status).toBe(403);
    expect(insufficient.code).toBe('insufficient_scope');
    expect(insufficient.headers()).toEqual({
      'WWW-Authenticate': 'Bearer error="insufficient_scope", scope="cloudphone:stream"',
    });
  });

  it('needs no scope when the issuer requires none', async () => {
    const token = await signToken(ec, claims({ scope: undefined }));
    await expect(authenticate(token, acme({ requiredScopes: [] }))).resolves.toMatchObject({ scopes: [] });
  });

  it.each<[string, JWTPayload]>([
    ['scope', { scope: ['cloudphone:stream'] }],
    ['scp', { scp: [1, 2] }],
  ])('rejects a malformed %s claim', async (claim, overrides) => {
    await expectUnauthenticated(authenticate(await signToken(ec, claims(overrides))), `token has a malformed "${claim}" claim`);
  });
});

describe('instances and device claims', () => {
  it('extracts both when configured and present', async () => {
    const token = await signToken(ec, claims({ cloudphone_instances: [INSTANCE], device_id: 'dc1079f85676' }));
    await expect(authenticate(token)).resolves.toMatchObject({ claimedInstanceIds: [INSTANCE], deviceId: 'dc1079f85676' });
  });

  it('leaves them undefined when absent or not configured', async () => {
    const token = await signToken(ec, claims({ cloudphone_instances: [INSTANCE], device_id: 'dc1079f85676' }));
    const unconfigured = acme({ instancesClaim: undefined, deviceClaim: undefined });
    const expected = { claimedInstanceIds: undefined, deviceId: undefined };
    await expect(authenticate(token, unconfigured)).resolves.toMatchObject(expected);
    await expect(authenticate(await signToken(ec, claims()))).resolves.toMatchObject(expected);
  });

  it.each<[string, unknown]>([
    ['a string', INSTANCE],
    ['a non-string member', [INSTANCE, 7]],
    ['a badly formed ID', ['bad id!']],
  ])('rejects an instances claim that is %s', async (_label, value) => {
    const token = await signToken(ec, claims({ cloudphone_instances: value }));
    await expectUnauthenticated(authenticate(token), 'token has a malformed "cloudphone_instances" claim');
  });

  it.each<[string, unknown]>([
    ['a number', 12345],
    ['empty', ''],
    ['too long', 'd'.repeat(65)],
  ])('rejects a device claim that is %s', async (_label, value) => {
    const token = await signToken(ec, claims({ device_id: value }));
    await expectUnauthenticated(authenticate(token), 'token has a malformed "device_id" claim');
  });
});

describe('Authorization header', () => {
  const authenticator = () => createAuthenticator([acme()], { now: () => NOW });

  it.each<[string, string | undefined]>([
    ['missing', undefined],
    ['empty', ''],
    ['another scheme', 'Basic x'],
    ['Bearer with no token', 'Bearer'],
    ['Bearer with only spaces', 'Bearer   '],
  ])('%s: bare challenge, no token presented', async (_label, header) => {
    await expectUnauthenticated(authenticator().authenticate(header), 'bearer token required', false);
  });

  it('two tokens: malformed', async () => {
    const token = await signToken(ec, claims());
    await expectUnauthenticated(authenticator().authenticate(`Bearer ${token} ${token}`), 'malformed token');
  });

  it.each([
    ['not a JWS', 'opaque-token'],
    ['four segments', 'a.b.c.d'],
    ['non-base64url characters', 'a+b.c.d'],
    ['a payload that is not JSON', 'eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln'],
    ['oversized', `${'a'.repeat(8000)}.${'b'.repeat(200)}.c`],
  ])('%s: malformed token', async (_label, token) => {
    await expectUnauthenticated(authenticator().authenticate(`Bearer ${token}`), 'malformed token');
  });
});
