import type { ServiceError } from './errors';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  requestId: string;
  [extension: string]: unknown;
}

/**
 * RFC 9457 problem details for a ServiceError: the one place an error becomes what a caller sees.
 * Only the error's own fixed title, detail and declared extensions are used, never a `cause`.
 */
export function toProblem(error: ServiceError, requestId: string): Problem {
  return {
    ...error.extensions(),
    type: `urn:cloudphone-stream-tokens:problem:${error.code}`,
    title: error.title,
    status: error.status,
    code: error.code,
    detail: error.message,
    requestId,
  };
}
