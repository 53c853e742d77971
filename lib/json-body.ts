import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors';

export const MAX_BODY_BYTES = 16 * 1024;

/** `application/json`, with parameters (`; charset=utf-8`); the contract answers any other type with 415. */
const JSON_MEDIA_TYPE = /^application\/json\s*(?:;.*)?$/i;

/** The body's size in bytes as received: checked before anything else so a large body costs nothing. */
export function assertBodySize(body: string | null | undefined, isBase64Encoded: boolean): void {
  // serverless-offline passes `body: null` for an empty body where API Gateway omits the field.
  if (body == null) return;
  const bytes = isBase64Encoded ? Buffer.from(body, 'base64').byteLength : Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_BODY_BYTES) throw new PayloadTooLargeError(MAX_BODY_BYTES);
}

/**
 * Parses a JSON request body. A wrong media type is 415; a body that is missing or is not JSON is
 * 400 `invalid_request` (middy's JSON parser answers 415 for malformed JSON, which the contract does not).
 */
export function parseJsonBody(contentType: string | undefined, body: string | null | undefined, isBase64Encoded: boolean): unknown {
  if (!contentType || !JSON_MEDIA_TYPE.test(contentType)) throw new UnsupportedMediaTypeError();
  if (body == null || body === '') throw new InvalidRequestError('The body must be a JSON object');
  const text = isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidRequestError('The body is not valid JSON');
  }
}
