import { describe, expect, it } from '@jest/globals';
import { InvalidRequestError } from '../../lib/errors';
import { parseStreamTokensBody } from '../../lib/request';

const limits = { maxInstancesPerRequest: 3, renewalHoursMax: 12 };

describe('parseStreamTokensBody', () => {
  it('accepts the seed example', () => {
    expect(
      parseStreamTokensBody(
        { instanceIds: ['RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac'], deviceId: 'dc1079f85676', renewalHours: 2 },
        limits,
      ),
    ).toEqual({ instanceIds: ['RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac'], deviceId: 'dc1079f85676', renewalHours: 2 });
  });

  it('leaves omitted fields undefined for the policy to fill', () => {
    expect(parseStreamTokensBody({}, limits)).toEqual({ instanceIds: undefined, deviceId: undefined, renewalHours: undefined });
  });

  it('collapses duplicates keeping first-seen order before counting', () => {
    expect(parseStreamTokensBody({ instanceIds: ['b', 'a', 'b', 'c', 'a'] }, limits).instanceIds).toEqual(['b', 'a', 'c']);
  });

  it.each([
    ['an array', []],
    ['null', null],
    ['a string', 'instanceIds'],
    ['a number', 42],
  ])('refuses a body that is %s', (_label, body) => {
    expect(() => parseStreamTokensBody(body, limits)).toThrow('The body must be a JSON object');
  });

  it.each([
    ['an unknown field', { instanceIds: ['a'], extra: 1 }, 'unknown field(s): extra'],
    ['an empty instance list', { instanceIds: [] }, 'instanceIds'],
    ['an ID with a space', { instanceIds: ['a b'] }, 'instanceIds.0'],
    ['an ID of 129 characters', { instanceIds: ['x'.repeat(129)] }, 'instanceIds.0'],
    ['an empty ID', { instanceIds: [''] }, 'instanceIds.0'],
    ['a non-string ID', { instanceIds: [7] }, 'instanceIds.0'],
    ['too many distinct instances', { instanceIds: ['a', 'b', 'c', 'd'] }, 'at most 3'],
    ['a device ID of 65 characters', { deviceId: 'd'.repeat(65) }, 'deviceId'],
    ['a device ID with a slash', { deviceId: 'a/b' }, 'deviceId'],
    ['renewalHours of 0', { renewalHours: 0 }, 'renewalHours'],
    ['renewalHours above the maximum', { renewalHours: 13 }, 'renewalHours'],
    ['fractional renewalHours', { renewalHours: 1.5 }, 'renewalHours'],
    ['renewalHours as a string', { renewalHours: '2' }, 'renewalHours'],
  ])('refuses %s as invalid_request naming the field', (_label, body, fragment) => {
    let error: unknown;
    try {
      parseStreamTokensBody(body, limits);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).status).toBe(400);
    expect((error as InvalidRequestError).message).toContain(fragment);
  });

  it('accepts an ID of exactly 128 allowed characters and every allowed punctuation mark', () => {
    const id = 'A-z_0.9:'.padEnd(128, 'x');
    expect(parseStreamTokensBody({ instanceIds: [id], deviceId: 'a.b:c_d-e' }, limits).instanceIds).toEqual([id]);
  });

  it('keeps three duplicates of one ID under a cap of one distinct ID', () => {
    expect(parseStreamTokensBody({ instanceIds: ['a', 'a', 'a'] }, { ...limits, maxInstancesPerRequest: 1 }).instanceIds).toEqual(['a']);
  });
});
