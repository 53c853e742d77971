import { describe, expect, it } from '@jest/globals';
import { parseBeijingTime, toRfc3339Seconds } from '../../lib/beijing-time';

describe('parseBeijingTime', () => {
  it('reads the seed example ExpireTime as UTC+8', () => {
    expect(parseBeijingTime('2025-01-08 12:32:07')?.toISOString()).toBe('2025-01-08T04:32:07.000Z');
  });

  it('crosses midnight backwards into the previous UTC day', () => {
    expect(parseBeijingTime('2025-01-01 03:00:00')?.toISOString()).toBe('2024-12-31T19:00:00.000Z');
  });

  it('does not depend on the machine time zone', () => {
    const before = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    try {
      expect(parseBeijingTime('2025-07-01 08:00:00')?.toISOString()).toBe('2025-07-01T00:00:00.000Z');
    } finally {
      process.env.TZ = before;
    }
  });

  it.each([
    '2025-01-08T12:32:07',
    '2025-01-08 12:32:07Z',
    '2025-01-08 12:32',
    '2025-02-30 10:00:00',
    '2025-01-08 24:00:00',
    '2025-01-08 12:60:00',
    '',
  ])('refuses %p', (text) => {
    expect(parseBeijingTime(text)).toBeUndefined();
  });
});

describe('toRfc3339Seconds', () => {
  it('drops milliseconds and keeps the Z suffix', () => {
    expect(toRfc3339Seconds(new Date('2026-12-03T10:00:00.999Z'))).toBe('2026-12-03T10:00:00Z');
  });
});
