/** A quota of `limit` events per `windowSeconds`, written `N/<seconds>s` in configuration (e.g. `20/1s`). */
export interface Rate {
  limit: number;
  windowSeconds: number;
}

const RATE_PATTERN = /^\s*(\d+)\s*\/\s*(\d+)\s*s\s*$/;

export function parseRate(raw: string): Rate {
  const match = RATE_PATTERN.exec(raw);
  if (!match) throw new Error(`must look like N/<seconds>s (e.g. 20/1s), got "${raw}"`);
  const limit = Number(match[1]);
  const windowSeconds = Number(match[2]);
  if (limit < 1) throw new Error(`must allow at least 1 request, got "${raw}"`);
  if (windowSeconds < 1 || windowSeconds > 86400) throw new Error(`must use a window of 1 to 86400 seconds, got "${raw}"`);
  return { limit, windowSeconds };
}
