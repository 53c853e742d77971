import { errors } from 'jose';
import { InternalError, UnauthenticatedError } from '../errors';
import { SigningKeysUnavailableError } from './key-set';

/**
 * Rethrows a failure of `jwtVerify` as the error the caller sees. Details are fixed strings: they
 * never echo the token, and jose errors are not chained as `cause` because claim errors carry the
 * token's payload.
 *
 * Signing keys unavailable (IdP JWKS down, slow or broken) → 500 `internal`, not 401: the token may
 * be perfectly valid, the caller cannot fix it, and `error="invalid_token"` would tell clients to
 * discard good tokens and send every user back to a login that is itself likely down. The contract's
 * 401 lists token faults only and its 500 row covers "anything else"; a 5xx also reaches the alarms
 * a flood of 401s would hide. The cause (network error, status) stays on the error for the logs.
 *
 * Anything that is not a jose error is a bug and is rethrown unchanged.
 */
export function throwVerificationFailure(error: unknown): never {
  if (error instanceof SigningKeysUnavailableError) throw new InternalError({ cause: error });
  if (error instanceof errors.JOSEError) throw new UnauthenticatedError(detailFor(error), true);
  throw error;
}

function detailFor(error: errors.JOSEError): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) return claimDetail(error);
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm not accepted';
  if (error instanceof errors.JWKSNoMatchingKey) return 'unknown signing key';
  // Several keys fit a token without `kid`: we do not try them in turn, issuers must name their key.
  if (error instanceof errors.JWKSMultipleMatchingKeys) return 'token must name its signing key (kid)';
  if (error instanceof errors.JOSENotSupported) return 'token uses an unsupported feature';
  return 'malformed token';
}

function claimDetail(error: errors.JWTClaimValidationFailed): string {
  if (error.reason === 'missing') return `token lacks the "${error.claim}" claim`;
  switch (error.claim) {
    case 'iss':
      return 'issuer not accepted';
    case 'aud':
      return 'audience not accepted';
    case 'nbf':
      return 'token not yet valid';
    default:
      return 'token claims invalid';
  }
}
