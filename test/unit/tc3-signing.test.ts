import { describe, expect, it } from '@jest/globals';
import Sign from 'tencentcloud-sdk-nodejs-common/tencentcloud/common/sign';
import {
  canonicalRequest,
  formatAuthorization,
  parseAuthorization,
  sha256Hex,
  signRequest,
  signature,
  signingKey,
  stringToSign,
  utcDate,
} from '../../local/tc3';

/** Tencent's worked example (docs/tencent-cloud-api.md). The `\u` escapes are literal text in the body. */
const VECTOR = {
  secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
  secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
  timestamp: 1551113065,
  date: '2019-02-25',
  host: 'cvm.tencentcloudapi.com',
  service: 'cvm',
  contentType: 'application/json; charset=utf-8',
  body: String.raw`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`,
  bodyHash: '35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064',
  canonicalRequestHash: '5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031',
  signature: '72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168',
};

const EXPECTED_CANONICAL_REQUEST =
  'POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n' + VECTOR.bodyHash;
const EXPECTED_STRING_TO_SIGN = `TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n${VECTOR.canonicalRequestHash}`;
const EXPECTED_AUTHORIZATION =
  `TC3-HMAC-SHA256 Credential=${VECTOR.secretId}/2019-02-25/cvm/tc3_request, ` +
  `SignedHeaders=content-type;host, Signature=${VECTOR.signature}`;

const vectorHeaders = { 'content-type': VECTOR.contentType, host: VECTOR.host };

/** The SDK's signer, called as HttpConnection.doRequestWithSign3 calls it (a Buffer payload is hashed as is). */
function sdkSign(input: { body: string; timestamp: number; url: string; service: string; contentType: string; secretId: string; secretKey: string }) {
  return Sign.sign3({
    method: 'POST',
    url: input.url,
    payload: Buffer.from(input.body, 'utf8'),
    timestamp: input.timestamp,
    service: input.service,
    secretId: input.secretId,
    secretKey: input.secretKey,
    multipart: false,
    boundary: '',
    headers: { 'Content-Type': input.contentType },
  });
}

describe('TC3-HMAC-SHA256 primitives against Tencent’s official test vector', () => {
  it('hashes the exact body bytes', () => {
    // Six-character escapes, not the decoded CJK characters: the hash is over what is sent.
    expect(VECTOR.body).toContain('\\u672a\\u547d\\u540d');
    expect(Buffer.byteLength(VECTOR.body)).toBe(86);
    expect(sha256Hex(VECTOR.body)).toBe(VECTOR.bodyHash);
  });

  it('builds the canonical request byte for byte and hashes it', () => {
    const canonical = canonicalRequest({
      method: 'POST',
      path: '/',
      query: '',
      headers: vectorHeaders,
      signedHeaders: ['host', 'content-type'],
      payloadHash: VECTOR.bodyHash,
    });
    expect(canonical).toBe(EXPECTED_CANONICAL_REQUEST);
    expect(sha256Hex(canonical)).toBe(VECTOR.canonicalRequestHash);
  });

  it('builds the string to sign and the signature', () => {
    const toSign = stringToSign(VECTOR.timestamp, VECTOR.date, VECTOR.service, VECTOR.canonicalRequestHash);
    expect(toSign).toBe(EXPECTED_STRING_TO_SIGN);
    expect(signature(signingKey(VECTOR.secretKey, VECTOR.date, VECTOR.service), toSign)).toBe(VECTOR.signature);
  });

  it('signs the whole request into the exact Authorization header', () => {
    const signed = signRequest({ ...VECTOR, headers: vectorHeaders, signedHeaders: ['content-type', 'host'] });
    expect(signed.canonicalRequest).toBe(EXPECTED_CANONICAL_REQUEST);
    expect(signed.stringToSign).toBe(EXPECTED_STRING_TO_SIGN);
    expect(signed.signature).toBe(VECTOR.signature);
    expect(signed.authorization).toBe(EXPECTED_AUTHORIZATION);
  });

  it('parses the Authorization header back into its parts', () => {
    expect(parseAuthorization(EXPECTED_AUTHORIZATION)).toEqual({
      secretId: VECTOR.secretId,
      date: '2019-02-25',
      service: 'cvm',
      signedHeaders: ['content-type', 'host'],
      signature: VECTOR.signature,
    });
    const parsed = parseAuthorization(EXPECTED_AUTHORIZATION);
    expect(parsed && formatAuthorization(parsed)).toBe(EXPECTED_AUTHORIZATION);
  });

  it.each([
    ['absent', undefined],
    ['another algorithm', EXPECTED_AUTHORIZATION.replace('TC3-HMAC-SHA256', 'HMAC-SHA256')],
    ['a wrong terminator', EXPECTED_AUTHORIZATION.replace('tc3_request', 'aws4_request')],
    ['a short signature', EXPECTED_AUTHORIZATION.slice(0, -2)],
    ['no SignedHeaders', `TC3-HMAC-SHA256 Credential=${VECTOR.secretId}/2019-02-25/cvm/tc3_request, Signature=${VECTOR.signature}`],
  ])('rejects an Authorization header that is %s', (_label, header) => {
    expect(parseAuthorization(header)).toBeUndefined();
  });
});

describe('the SDK’s own signer (tencentcloud-sdk-nodejs-common Sign.sign3)', () => {
  it('reproduces the official test vector exactly', () => {
    const authorization = sdkSign({ ...VECTOR, url: `https://${VECTOR.host}/` });
    expect(authorization).toBe(EXPECTED_AUTHORIZATION);
  });

  it('signs the host without the port it connects to, as the emulator canonicalises it', () => {
    const withPort = sdkSign({ ...VECTOR, url: `http://${VECTOR.host}:4510/` });
    expect(withPort).toBe(EXPECTED_AUTHORIZATION);
  });

  it('agrees with local/tc3.ts on a gs request', () => {
    const request = {
      secretId: 'AKIDEXAMPLE',
      secretKey: 'secret-key-example',
      timestamp: 1_736_300_000,
      service: 'gs',
      contentType: 'application/json',
      body: JSON.stringify({ InstanceIds: ['RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac'], DeviceId: 'dc1079f85676', RenewalTime: 2 }),
    };
    const ours = signRequest({
      ...request,
      headers: { 'content-type': request.contentType, host: 'gs.tencentcloudapi.com' },
      signedHeaders: ['content-type', 'host'],
    });
    expect(sdkSign({ ...request, url: 'https://gs.tencentcloudapi.com/' })).toBe(ours.authorization);
  });
});

describe('the signing date', () => {
  // 2019-02-26 01:00:00 in Beijing (UTC+8) is 2019-02-25 17:00:00 UTC.
  const oneAmBeijing = Date.UTC(2019, 1, 25, 17, 0, 0) / 1000;

  it('is the UTC date of the timestamp, not the Beijing date', () => {
    expect(utcDate(oneAmBeijing)).toBe('2019-02-25');
    expect(utcDate(oneAmBeijing + 7 * 3600)).toBe('2019-02-26'); // 08:00 Beijing = 00:00 UTC
  });

  it('is what both signers put in the credential scope at 01:00 Beijing time', () => {
    const input = { ...VECTOR, timestamp: oneAmBeijing };
    const ours = signRequest({ ...input, headers: vectorHeaders, signedHeaders: ['content-type', 'host'] });
    const sdk = sdkSign({ ...input, url: `https://${VECTOR.host}/` });
    expect(parseAuthorization(ours.authorization)?.date).toBe('2019-02-25');
    expect(sdk).toBe(ours.authorization);
  });
});
