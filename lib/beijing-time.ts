/**
 * Tencent Cloud writes `ExpireTime` as `YYYY-MM-DD HH:MM:SS` with no zone, meaning Beijing time
 * (UTC+8, no daylight saving). Parsing it with `new Date(text)` would use the machine's zone, so the
 * offset is applied explicitly.
 */
const BEIJING_OFFSET_MS = 8 * 60 * 60 * 1000;
const PATTERN = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** The instant a Beijing-time wall-clock string names, or undefined when it is not a real date and time. */
export function parseBeijingTime(text: string): Date | undefined {
  const match = PATTERN.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const utcMs = Date.UTC(year, month - 1, day, hour, minute, second);
  const roundTrip = new Date(utcMs);
  // Date.UTC rolls 2025-02-30 over into March; a rolled-over value means the text was not a real date.
  if (roundTrip.getUTCMonth() !== month - 1 || roundTrip.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  return new Date(utcMs - BEIJING_OFFSET_MS);
}

/** RFC 3339 UTC with whole seconds, e.g. `2025-01-08T04:32:07Z`. */
export function toRfc3339Seconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
