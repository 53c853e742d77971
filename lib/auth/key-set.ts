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
  failureCooldownMs: number;
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
 *
 * A failed fetch starts `failureCooldownMs` without fetches (jose's own cooldown follows successes
 * only): while a partner's JWKS endpoint is down, tokens that merely name its issuer, signed or not,
 * cannot make this container fetch on every request. Meanwhile, and for the request that failed, the
 * last good key set keeps verifying, so an IdP outage does not stop callers whose keys are known.
 */
export function createKeySet(issuer: IssuerConfig, options: KeySetOptions): KeySet {
  if (issuer.jwks) {
    // The schema checked only `kty`; jose validates the rest and throws here, at start-up, on a bad set.
    const local = createLocalJWKSet(issuer.jwks as JSONWebKeySet);
    return (protectedHeader, token) => resolveFor(issuer, local, protectedHeader, token);
  }
  const remote = createRemoteJWKSet(new URL(requireJwksUri(issuer)), {
    timeoutDuration: options.timeoutMs,
    cooldownDuration: options.cooldownMs,
    cacheMaxAge: options.cacheMaxAgeMs,
  });
  /** The last failed fetch, with the key set that was good before it (built once per failure, not per request). */
  let failure: { at: number; error: unknown; lastGood: KeySet | undefined } | undefined;

  const fromLastGoodSet: KeySet = (protectedHeader, token) => {
    const lastGood = failure?.lastGood;
    if (!lastGood) return Promise.reject(new SigningKeysUnavailableError(issuer.name, { cause: failure?.error }));
    return resolveFor(issuer, lastGood, protectedHeader, token);
  };

  return async (protectedHeader, token) => {
    if (failure && Date.now() - failure.at < options.failureCooldownMs) return fromLastGoodSet(protectedHeader, token);
    try {
      return await remote(protectedHeader, token);
    } catch (error) {
      if (isTokenError(error)) throw error;
      const lastGood = remote.jwks();
      failure = { at: Date.now(), error, lastGood: lastGood && createLocalJWKSet(lastGood) };
      return fromLastGoodSet(protectedHeader, token);
    }
  };
}

/** Resolves with `keySet`; every failure but "no key fits this token" is the issuer's. */
async function resolveFor(issuer: IssuerConfig, keySet: KeySet, protectedHeader: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
  try {
    return await keySet(protectedHeader, token);
  } catch (error) {
    if (isTokenError(error)) throw error;
    throw new SigningKeysUnavailableError(issuer.name, { cause: error });
  }
}

/** No key, or more than one, fits the token's header: the token's fault, not the issuer's. */
const isTokenError = (error: unknown): boolean => error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys;

function requireJwksUri(issuer: IssuerConfig): string {
  if (issuer.jwksUri === undefined) throw new Error(`issuer "${issuer.name}" has neither jwks nor jwksUri`);
  return issuer.jwksUri;
}
