import { describe, expect, it } from '@jest/globals';
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../lib/errors';
import { assertBodySize, MAX_BODY_BYTES, parseJsonBody } from '../../lib/json-body';

describe('assertBodySize', () => {
  it('accepts a body of exactly 16 KiB and refuses one byte more', () => {
    expect(() => assertBodySize('x'.repeat(MAX_BODY_BYTES), false)).not.toThrow();
    expect(() => assertBodySize('x'.repeat(MAX_BODY_BYTES + 1), false)).toThrow(PayloadTooLargeError);
  });

  it('counts bytes, not characters', () => {
    expect(() => assertBodySize('é'.repeat(MAX_BODY_BYTES / 2 + 1), false)).toThrow(PayloadTooLargeError);
  });

  it('counts the decoded size of a base64 body', () => {
    const encoded = Buffer.alloc(MAX_BODY_BYTES + 1).toString('base64');
    expect(() => assertBodySize(encoded, true)).toThrow(PayloadTooLargeError);
  });

  // serverless-offline sends `body: null` for an empty POST; this used to throw a TypeError (500).
  it.each([undefined, null])('lets an absent body (%p) through to validation', (body) => {
    expect(() => assertBodySize(body, false)).not.toThrow();
  });
});

describe('parseJsonBody', () => {
  it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json ; charset=utf-8'])(
    'parses JSON sent as %s',
    (contentType) => {
      expect(parseJsonBody(contentType, '{"a":1}', false)).toEqual({ a: 1 });
    },
  );

  // application/merge-patch+json was accepted (200) until a review held it to the contract: only application/json.
  it.each([undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'application/merge-patch+json', 'application/vnd.api+json'])('refuses media type %p with 415', (contentType) => {
    expect(() => parseJsonBody(contentType, '{}', false)).toThrow(UnsupportedMediaTypeError);
  });

  it.each([undefined, null, ''])('refuses a missing body (%p) with 400', (body) => {
    expect(() => parseJsonBody('application/json', body, false)).toThrow(InvalidRequestError);
  });

  it('refuses malformed JSON with 400, not 415', () => {
    expect(() => parseJsonBody('application/json', '{"instanceIds": [', false)).toThrow('The body is not valid JSON');
  });

  it('decodes a base64 body', () => {
    expect(parseJsonBody('application/json', Buffer.from('{"b":2}').toString('base64'), true)).toEqual({ b: 2 });
  });
});
