import { UnauthenticatedError } from '../errors';

/** Three base64url segments; the signature may be empty so that `alg: none` is refused as an algorithm, not a shape. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Far above any real access token; stops oversized input before anything decodes it. */
const MAX_TOKEN_LENGTH = 8192;

/**
 * Returns the compact JWS from an `Authorization: Bearer <token>` header (RFC 6750 §2.1).
 * No header, another scheme or an empty Bearer credential means no token was presented (bare
 * challenge, RFC 6750 §3.1); anything else that is not exactly one compact JWS is a malformed token.
 */
export function readBearerToken(authorizationHeader: string | undefined): string {
  const [scheme = '', ...credentials] = (authorizationHeader ?? '').trim().split(/\s+/);
  if (scheme.toLowerCase() !== 'bearer' || credentials.length === 0) {
    throw new UnauthenticatedError('bearer token required', false);
  }
  const [token = ''] = credentials;
  if (credentials.length !== 1 || token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) {
    throw new UnauthenticatedError('malformed token', true);
  }
  return token;
}
