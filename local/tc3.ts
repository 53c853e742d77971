/**
 * TC3-HMAC-SHA256, Tencent Cloud API 3.0's request signature, built from node:crypto only.
 * The gs emulator uses these primitives to VERIFY what the real client (CommonClient) sends, and tests use
 * `signRequest` to craft requests the SDK would never send (old timestamps, wrong service, ...).
 * Steps and names follow Tencent's signing document; the official test vector lives in
 * test/unit/tc3-signing.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';

export const TC3_ALGORITHM = 'TC3-HMAC-SHA256';
export const TC3_TERMINATOR = 'tc3_request';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Uint8Array, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** The credential-scope date: always the UTC date of the timestamp (a Beijing date breaks 00:00–08:00 +08:00). */
export function utcDate(timestampSeconds: number): string {
  return new Date(timestampSeconds * 1000).toISOString().slice(0, 10);
}

export interface CanonicalRequestInput {
  method: string;
  /** Canonical URI; the API is always called on `/`. */
  path: string;
  /** Canonical query string; empty for POST. */
  query: string;
  /** Header values by lower-case name; must hold every signed header. */
  headers: Readonly<Record<string, string>>;
  /** Lower-case names of the signed headers, in any order (they are sorted here). */
  signedHeaders: readonly string[];
  /** hex(sha256(body bytes)). */
  payloadHash: string;
}

/** Lower-cases and sorts the signed header names, as both sides must agree on `SignedHeaders`. */
export function normaliseSignedHeaders(names: readonly string[]): string[] {
  return [...new Set(names.map((name) => name.toLowerCase()))].sort();
}

/**
 * Step 1. Canonical headers are `name:value\n` with the name and value lower-cased and trimmed, as Tencent's
 * signing document specifies (the SDK's own values are already lower case, so it agrees byte for byte).
 */
export function canonicalRequest(input: CanonicalRequestInput): string {
  const names = normaliseSignedHeaders(input.signedHeaders);
  const canonicalHeaders = names
    .map((name) => {
      const value = input.headers[name];
      if (value === undefined) throw new Error(`signed header "${name}" has no value`);
      return `${name}:${value.trim().toLowerCase()}\n`;
    })
    .join('');
  return [input.method.toUpperCase(), input.path, input.query, canonicalHeaders, names.join(';'), input.payloadHash].join('\n');
}

/** Step 2. */
export function stringToSign(timestamp: number, date: string, service: string, canonicalRequestHash: string): string {
  return `${TC3_ALGORITHM}\n${timestamp}\n${date}/${service}/${TC3_TERMINATOR}\n${canonicalRequestHash}`;
}

/** Step 3: kDate → kService → kSigning. */
export function signingKey(secretKey: string, date: string, service: string): Buffer {
  const kDate = hmac(`TC3${secretKey}`, date);
  const kService = hmac(kDate, service);
  return hmac(kService, TC3_TERMINATOR);
}

/** Step 3, last part: hex(HMAC(kSigning, stringToSign)). */
export function signature(key: Uint8Array, toSign: string): string {
  return createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
}

export interface Tc3Authorization {
  secretId: string;
  date: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** Step 4. */
export function formatAuthorization(auth: Tc3Authorization): string {
  return (
    `${TC3_ALGORITHM} Credential=${auth.secretId}/${auth.date}/${auth.service}/${TC3_TERMINATOR}, ` +
    `SignedHeaders=${auth.signedHeaders.join(';')}, Signature=${auth.signature}`
  );
}

const AUTHORIZATION_PATTERN =
  /^TC3-HMAC-SHA256 Credential=([^/\s,]+)\/([^/\s,]+)\/([^/\s,]+)\/tc3_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

/**
 * Parses `Authorization: TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=..., Signature=<hex>`.
 * Returns undefined for anything else (another algorithm, a missing part, a wrong terminator); checking the
 * date and service against the request is the verifier's job.
 */
export function parseAuthorization(header: string | undefined): Tc3Authorization | undefined {
  const match = header === undefined ? null : AUTHORIZATION_PATTERN.exec(header.trim());
  if (!match) return undefined;
  const [, secretId = '', date = '', service = '', signedHeaders = '', sig = ''] = match;
  return { secretId, date, service, signedHeaders: signedHeaders.split(';'), signature: sig };
}

export interface SignRequestInput {
  secretId: string;
  secretKey: string;
  service: string;
  /** Unix seconds, sent as X-TC-Timestamp. */
  timestamp: number;
  method?: string;
  path?: string;
  query?: string;
  /** Header values by lower-case name. */
  headers: Readonly<Record<string, string>>;
  signedHeaders: readonly string[];
  body: string | Uint8Array;
}

export interface SignedRequest {
  authorization: string;
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
}

/** All four steps at once; `date` is derived from the timestamp unless a test overrides it to forge a bad scope. */
export function signRequest(input: SignRequestInput, date: string = utcDate(input.timestamp)): SignedRequest {
  const canonical = canonicalRequest({
    method: input.method ?? 'POST',
    path: input.path ?? '/',
    query: input.query ?? '',
    headers: input.headers,
    signedHeaders: input.signedHeaders,
    payloadHash: sha256Hex(input.body),
  });
  const toSign = stringToSign(input.timestamp, date, input.service, sha256Hex(canonical));
  const sig = signature(signingKey(input.secretKey, date, input.service), toSign);
  return {
    authorization: formatAuthorization({
      secretId: input.secretId,
      date,
      service: input.service,
      signedHeaders: normaliseSignedHeaders(input.signedHeaders),
      signature: sig,
    }),
    canonicalRequest: canonical,
    stringToSign: toSign,
    signature: sig,
  };
}
