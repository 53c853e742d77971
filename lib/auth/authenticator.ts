import { decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { InsufficientScopeError, UnauthenticatedError } from '../errors';
import { readBearerToken } from './bearer';
import type { Caller } from './caller';
import { readDeviceId, readInstanceIds, readScopes, readSubject } from './claims';
import type { IssuerConfig } from './issuer-config';
import { createKeySet, type KeySet } from './key-set';
import { throwVerificationFailure } from './verification-failure';

export interface AuthenticatorOptions {
  /** Leeway for `exp` and `nbf` against clock skew between us and the issuers. Default 30. */
  clockToleranceSeconds?: number;
  /** The clock claims are checked against; tests freeze it. */
  now?: () => Date;
  /** Budget for one JWKS fetch. Default 3000: a cold start must still leave room for the upstream call. */
  jwksTimeoutMs?: number;
  /** Minimum time between refetches triggered by an unknown `kid`, so random kids cannot hammer an IdP. Default 30000. */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted before a refetch; bounds how long a key the IdP removed still verifies, while its JWKS endpoint answers. Default 600000. */
  jwksCacheMaxAgeMs?: number;
  /** After a failed JWKS fetch, how long no other fetch is tried (the last good keys still verify). Default 5000. */
  jwksFailureCooldownMs?: number;
}

export interface Authenticator {
  /** Resolves the verified caller, or rejects with UnauthenticatedError (401), InsufficientScopeError (403) or InternalError (500: issuer keys unavailable). */
  authenticate(authorizationHeader: string | undefined): Promise<Caller>;
}

interface TrustedIssuer {
  config: IssuerConfig;
  keySet: KeySet;
}

/**
 * Create once per container: key sets (and their JWKS caches) live as long as the authenticator.
 *
 * `exp` is required, not merely honoured when present: these tokens open cloud phones, and a token
 * without an expiry would be a bearer credential valid forever.
 */
export function createAuthenticator(issuers: readonly IssuerConfig[], options: AuthenticatorOptions = {}): Authenticator {
  const keySetOptions = {
    timeoutMs: options.jwksTimeoutMs ?? 3000,
    cooldownMs: options.jwksCooldownMs ?? 30_000,
    cacheMaxAgeMs: options.jwksCacheMaxAgeMs ?? 600_000,
    failureCooldownMs: options.jwksFailureCooldownMs ?? 5000,
  };
  const trusted = new Map<string, TrustedIssuer>(
    issuers.map((config) => [config.issuer, { config, keySet: createKeySet(config, keySetOptions) }]),
  );
  const clockTolerance = options.clockToleranceSeconds ?? 30;
  const now = options.now ?? (() => new Date());

  return {
    async authenticate(authorizationHeader) {
      const token = readBearerToken(authorizationHeader);
      // The unverified `iss` only picks the registry entry; jwtVerify then checks it against that entry.
      const iss = unverifiedIssuer(token);
      const issuer = iss === undefined ? undefined : trusted.get(iss);
      if (issuer === undefined) throw new UnauthenticatedError('issuer not accepted', true);
      const { config } = issuer;

      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, issuer.keySet, {
          issuer: config.issuer,
          audience: config.audiences,
          algorithms: config.algorithms,
          clockTolerance,
          requiredClaims: [config.subjectClaim, 'exp'],
          currentDate: now(),
        }));
      } catch (error) {
        throwVerificationFailure(error);
      }

      const caller: Caller = {
        issuerName: config.name,
        issuer: config.issuer,
        subject: readSubject(payload, config.subjectClaim),
        scopes: readScopes(payload),
        claimedInstanceIds: readInstanceIds(payload, config.instancesClaim),
        deviceId: readDeviceId(payload, config.deviceClaim),
      };
      const missing = config.requiredScopes.filter((scope) => !caller.scopes.includes(scope));
      if (missing.length > 0) throw new InsufficientScopeError(config.requiredScopes);
      return caller;
    },
  };
}

function unverifiedIssuer(token: string): string | undefined {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(token);
  } catch {
    throw new UnauthenticatedError('malformed token', true);
  }
  return typeof claims.iss === 'string' ? claims.iss : undefined;
}
