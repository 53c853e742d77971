/**
 * Every failure the service reports is one of these classes. Each carries its HTTP status and a
 * stable `code` from the public contract; `lib/problem.ts` is the one place that renders them.
 * `detail` is written for the caller: it never holds secrets, tokens or upstream internals.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'unauthenticated'
  | 'insufficient_scope'
  | 'instance_not_allowed'
  | 'device_not_allowed'
  | 'access_revoked'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'upstream_error'
  | 'upstream_busy'
  | 'upstream_timeout'
  | 'internal';

export abstract class ServiceError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
  abstract readonly status: number;
  abstract readonly code: ErrorCode;
  abstract readonly title: string;
  /** Response header fields this error requires (`WWW-Authenticate`, `Retry-After`, `Allow`). */
  headers(): Record<string, string> {
    return {};
  }
  /** Extra problem-details members (RFC 9457 extensions) safe to show the caller. */
  extensions(): Record<string, unknown> {
    return {};
  }
}

export class InvalidRequestError extends ServiceError {
  readonly status = 400;
  readonly code = 'invalid_request';
  readonly title = 'Invalid request';
}

export class UnauthenticatedError extends ServiceError {
  readonly status = 401;
  readonly code = 'unauthenticated';
  readonly title = 'Authentication required';
  /** `tokenPresented` selects `error="invalid_token"` (RFC 6750 §3.1) over a bare challenge. */
  constructor(
    detail: string,
    readonly tokenPresented: boolean,
    options?: ErrorOptions,
  ) {
    super(detail, options);
  }
  override headers(): Record<string, string> {
    return {
      'WWW-Authenticate': this.tokenPresented ? 'Bearer error="invalid_token"' : 'Bearer',
    };
  }
}

export class InsufficientScopeError extends ServiceError {
  readonly status = 403;
  readonly code = 'insufficient_scope';
  readonly title = 'Insufficient scope';
  constructor(readonly requiredScopes: readonly string[]) {
    super(`The token lacks a required scope: ${requiredScopes.join(' ')}`);
  }
  override headers(): Record<string, string> {
    return {
      'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${this.requiredScopes.join(' ')}"`,
    };
  }
}

export class InstanceNotAllowedError extends ServiceError {
  readonly status = 403;
  readonly code = 'instance_not_allowed';
  readonly title = 'Instance not allowed';
  constructor(readonly deniedInstanceIds: readonly string[]) {
    super(
      deniedInstanceIds.length > 0
        ? 'The caller may not use some of the requested instances'
        : 'The caller may not use any instance',
    );
  }
  override extensions(): Record<string, unknown> {
    return { deniedInstanceIds: [...this.deniedInstanceIds] };
  }
}

export class DeviceNotAllowedError extends ServiceError {
  readonly status = 403;
  readonly code = 'device_not_allowed';
  readonly title = 'Device not allowed';
  constructor() {
    super("deviceId differs from the token's device claim");
  }
}

export class AccessRevokedError extends ServiceError {
  readonly status = 403;
  readonly code = 'access_revoked';
  readonly title = 'Access revoked';
  constructor() {
    super('Access for this caller has been revoked');
  }
}

export class NotFoundError extends ServiceError {
  readonly status = 404;
  readonly code = 'not_found';
  readonly title = 'Not found';
  constructor() {
    super('No such route');
  }
}

export class MethodNotAllowedError extends ServiceError {
  readonly status = 405;
  readonly code = 'method_not_allowed';
  readonly title = 'Method not allowed';
  constructor(readonly allow: readonly string[]) {
    super(`This route accepts ${allow.join(', ')}`);
  }
  override headers(): Record<string, string> {
    return { Allow: this.allow.join(', ') };
  }
}

export class PayloadTooLargeError extends ServiceError {
  readonly status = 413;
  readonly code = 'payload_too_large';
  readonly title = 'Payload too large';
  constructor(limitBytes: number) {
    super(`The body exceeds ${limitBytes} bytes`);
  }
}

export class UnsupportedMediaTypeError extends ServiceError {
  readonly status = 415;
  readonly code = 'unsupported_media_type';
  readonly title = 'Unsupported media type';
  constructor() {
    super('The body must be application/json');
  }
}

export class RateLimitedError extends ServiceError {
  readonly status = 429;
  readonly code = 'rate_limited';
  readonly title = 'Too many requests';
  /** `rateLimitHeaders`: the `RateLimit-Policy` / `RateLimit` fields, which a refusal carries too. */
  constructor(
    detail: string,
    readonly retryAfterSeconds: number,
    readonly rateLimitHeaders: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
  }
  override headers(): Record<string, string> {
    return { ...this.rateLimitHeaders, 'Retry-After': String(Math.max(1, Math.ceil(this.retryAfterSeconds))) };
  }
}

export class UpstreamError extends ServiceError {
  readonly status = 502;
  readonly code = 'upstream_error';
  readonly title = 'Upstream error';
  constructor(options?: ErrorOptions) {
    super('The cloud phone service refused or answered malformed', options);
  }
}

export class UpstreamBusyError extends ServiceError {
  readonly status = 503;
  readonly code = 'upstream_busy';
  readonly title = 'Upstream busy';
  constructor(
    readonly retryAfterSeconds: number,
    options?: ErrorOptions,
  ) {
    super('The cloud phone service quota is momentarily full', options);
  }
  override headers(): Record<string, string> {
    return { 'Retry-After': String(Math.max(1, Math.ceil(this.retryAfterSeconds))) };
  }
}

export class UpstreamTimeoutError extends ServiceError {
  readonly status = 504;
  readonly code = 'upstream_timeout';
  readonly title = 'Upstream timeout';
  constructor(options?: ErrorOptions) {
    super('The cloud phone service did not answer in time', options);
  }
}

export class InternalError extends ServiceError {
  readonly status = 500;
  readonly code = 'internal';
  readonly title = 'Internal error';
  constructor(options?: ErrorOptions) {
    super('An unexpected error occurred', options);
  }
}

/** Anything that is not already a ServiceError becomes `internal`, keeping the original as `cause` for logs. */
export function toServiceError(error: unknown): ServiceError {
  return error instanceof ServiceError ? error : new InternalError({ cause: error });
}
