/** Keys, tokens (honest and crafted) and a request-counting JWKS server for the authenticator tests. */
import { expect } from '@jest/globals';
import { webcrypto } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
} from 'jose';
import { UnauthenticatedError } from '../../lib/errors';

export type TestAlgorithm = 'RS256' | 'ES256';

export interface TestKey {
  alg: TestAlgorithm;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The public key as an issuer publishes it: with `kid`, `alg` and `use`. */
  publicJwk: JWK;
}

export async function createTestKey(alg: TestAlgorithm, kid = `${alg.toLowerCase()}-test`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

export const createRsaKey = (kid?: string): Promise<TestKey> => createTestKey('RS256', kid);
export const createEcKey = (kid?: string): Promise<TestKey> => createTestKey('ES256', kid);

export function jwksOf(...keys: TestKey[]): JSONWebKeySet {
  return { keys: keys.map((key) => key.publicJwk) };
}

export function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const SIGNING_PARAMS: Record<TestAlgorithm, webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams> = {
  RS256: { name: 'RSASSA-PKCS1-v1_5' },
  ES256: { name: 'ECDSA', hash: 'SHA-256' },
};

/**
 * A token signed by `key` over exactly the header and claims given: `header` overrides the default
 * `{alg, kid, typ}` (an `undefined` member is dropped), even with values jose's SignJWT would refuse.
 */
export async function signToken(key: TestKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const signingInput = `${encodeSegment({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })}.${encodeSegment(claims)}`;
  const signature = await webcrypto.subtle.sign(SIGNING_PARAMS[key.alg], key.privateKey, new TextEncoder().encode(signingInput));
  return `${signingInput}.${Buffer.from(signature).toString('base64url')}`;
}

/** `alg: none`: header and payload, empty signature (RFC 7519 §6). */
export function unsecuredToken(claims: JWTPayload, header: Record<string, unknown> = {}): string {
  return `${encodeSegment({ alg: 'none', typ: 'JWT', ...header })}.${encodeSegment(claims)}.`;
}

/**
 * The algorithm-confusion attack: HS256 with the issuer's *public* key bytes as the HMAC secret,
 * which a verifier that lets the token pick the algorithm would accept.
 */
export function hs256Token(claims: JWTPayload, secret: Uint8Array, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header }).sign(secret);
}

/** The public key in the forms an attacker would try as an HMAC secret: SPKI PEM and JWK JSON. */
export async function publicKeySecrets(key: TestKey): Promise<{ pem: Uint8Array; jwkJson: Uint8Array }> {
  return {
    pem: new TextEncoder().encode(await exportSPKI(key.publicKey)),
    jwkJson: new TextEncoder().encode(JSON.stringify(key.publicJwk)),
  };
}

/** Swaps the payload of a signed token, keeping its header and signature. */
export function withPayload(token: string, claims: JWTPayload): string {
  const [header, , signature] = token.split('.');
  return `${header}.${encodeSegment(claims)}.${signature}`;
}

export interface JwksServer {
  jwksUri: string;
  /** Requests received so far, any path. */
  requests(): number;
  /** While true, every request is answered 500. */
  setFailing(failing: boolean): void;
  close(): Promise<void>;
}

/** Serves `jwks` at `/.well-known/jwks.json` on 127.0.0.1; with `hang`, accepts requests and never answers. */
export async function startJwksServer(jwks: JSONWebKeySet, options: { hang?: boolean } = {}): Promise<JwksServer> {
  let count = 0;
  let failing = false;
  const server = createServer((request, response) => {
    count += 1;
    if (options.hang) return;
    if (failing) {
      response.writeHead(500).end();
      return;
    }
    if (request.url !== '/.well-known/jwks.json') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    jwksUri: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    requests: () => count,
    setFailing: (value) => {
      failing = value;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/** Asserts a 401 with the given caller-facing detail and the challenge that `tokenPresented` selects. */
export async function expectUnauthenticated(promise: Promise<unknown>, detail: string, tokenPresented = true): Promise<void> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(UnauthenticatedError);
  const unauthenticated = error as UnauthenticatedError;
  expect(unauthenticated.status).toBe(401);
  expect(unauthenticated.code).toBe('unauthenticated');
  expect(unauthenticated.message).toBe(detail);
  expect(unauthenticated.tokenPresented).toBe(tokenPresented);
  expect(unauthenticated.headers()).toEqual({
    'WWW-Authenticate': tokenPresented ? 'Bearer error="invalid_token"' : 'Bearer',
  });
}
