import { z } from 'zod';
import { InvalidRequestError } from './errors';

export const instanceIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, '1–128 characters of A-Z a-z 0-9 _ - . :');
export const deviceIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, '1–64 characters of A-Z a-z 0-9 _ - . :');

/** A validated `POST /v1/stream-tokens` body. Absent fields stay absent; policy fills them in later. */
export interface StreamTokensBody {
  instanceIds: string[] | undefined;
  deviceId: string | undefined;
  renewalHours: number | undefined;
}

export interface BodyLimits {
  maxInstancesPerRequest: number;
  renewalHoursMax: number;
}

/**
 * Validates the request body against the contract. Duplicated IDs are collapsed (first occurrence
 * keeps its place, so tokens come back in request order) before the count is checked.
 */
export function parseStreamTokensBody(body: unknown, limits: BodyLimits): StreamTokensBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequestError('The body must be a JSON object');
  }
  const schema = z.strictObject({
    instanceIds: z.array(instanceIdSchema).min(1, 'must name at least one instance').optional(),
    deviceId: deviceIdSchema.optional(),
    renewalHours: z.number().int('must be an integer').min(1).max(limits.renewalHoursMax).optional(),
  });
  const result = schema.safeParse(body);
  if (!result.success) {
    throw new InvalidRequestError(describeIssues(result.error));
  }
  const instanceIds = result.data.instanceIds ? [...new Set(result.data.instanceIds)] : undefined;
  if (instanceIds && instanceIds.length > limits.maxInstancesPerRequest) {
    throw new InvalidRequestError(`instanceIds: at most ${limits.maxInstancesPerRequest} instances per request`);
  }
  return { instanceIds, deviceId: result.data.deviceId, renewalHours: result.data.renewalHours };
}

/** Names the offending field without echoing the caller's value back. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
      const field = issue.path.map(String).join('.');
      return `${field || 'body'}: ${issue.message}`;
    })
    .join('; ');
}
