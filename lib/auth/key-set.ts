import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from 'jose';
import type { IssuerConfig } from './issuer-config';

export interface KeySetOptions {
  timeoutMs: number;
  cooldownMs: number;
  cacheMaxAgeMs: number;
}

export type KeySet = (protectedHeader: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/**
 * The issuer's signing keys could not be obtained or used (JWKS endpoint unreachable, timed out,
 * not 200, not a key set, or a key that does not import). A fault of the issuer or of our
 * configuration, never of the token; `cause` holds the underlying error for operators.
 */
export class SigningKeysUnavailableError extends Error {
  constructor(issuerName: string, options: ErrorOptions) {
    super(`signing keys of issuer "${issuerName}" unavailable`, options);
    this.name = 'SigningKeysUnavailableError';
  }
}

/**
 * Builds one issuer's key resolver, once per container: the remote set caches fetched keys across
 * requests (refetching after `cacheMaxAgeMs`, or for an unknown `kid` once `cooldownMs` has passed).
 * Only "no key fits this token" stays a token error; every other failure is the issuer's.
 */
export function createKeySet(issuer: IssuerConfig, options: KeySetOptions): KeySet {
  const resolve = issuer.jwks
    ? // The schema checked only `kty`; jose validates the rest and throws here, at start-up, on a bad set.
      createLocalJWKSet(issuer.jwks as JSONWebKeySet)
    : createRemoteJWKSet(new URL(requireJwksUri(issuer)), {
        timeoutDuration: options.timeoutMs,
        cooldownDuration: options.cooldownMs,
        cacheMaxAge: options.cacheMaxAgeMs,
      });
  return async (protectedHeader, token) => {
    try {
      return await resolve(protectedHeader, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new SigningKeysUnavailableError(issuer.name, { cause: error });
    }
  };
}

function requireJwksUri(issuer: IssuerConfig): string {
  if (issuer.jwksUri === undefined) throw new Error(`issuer "${issuer.name}" has neither jwks nor jwksUri`);
  return issuer.jwksUri;
}
