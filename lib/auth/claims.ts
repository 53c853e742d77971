import type { JWTPayload } from 'jose';
import { z } from 'zod';
import { UnauthenticatedError } from '../errors';
import { deviceIdSchema, instanceIdSchema } from '../request';

/**
 * Readers for the claims of an already verified payload. A claim that is present but malformed
 * rejects the token (401) rather than being ignored: a signed token that says something we cannot
 * read is a broken issuer, and silently dropping, say, a device binding would widen what it opens.
 */

const spaceSeparated = z.string().transform((value) => value.split(' ').filter((scope) => scope !== ''));
const scopeSchema = spaceSeparated;
const scpSchema = z.union([spaceSeparated, z.array(z.string().min(1))]);
/**
 * OpenID Connect caps `sub` at 255 ASCII characters; counted in UTF-8 bytes here, because the subject
 * becomes part of DynamoDB keys (sort keys end at 1024 bytes) and a key the table refuses must never
 * reach it from a token.
 */
export const MAX_SUBJECT_BYTES = 255;
const subjectSchema = z
  .string()
  .min(1)
  .refine((subject) => Buffer.byteLength(subject, 'utf8') <= MAX_SUBJECT_BYTES);
const instanceIdsSchema = z.array(instanceIdSchema);

export function readSubject(payload: JWTPayload, claim: string): string {
  return parseClaim(subjectSchema, payload, claim);
}

/** `scope` (RFC 9068: space-separated string) and `scp` (string or array of strings), merged and de-duplicated. */
export function readScopes(payload: JWTPayload): string[] {
  const scope = payload.scope === undefined ? [] : parseClaim(scopeSchema, payload, 'scope');
  const scp = payload.scp === undefined ? [] : parseClaim(scpSchema, payload, 'scp');
  return [...new Set([...scope, ...scp])];
}

/** The instance IDs a partner token claims: well-formed instance IDs, or undefined when not configured or absent. */
export function readInstanceIds(payload: JWTPayload, claim: string | undefined): string[] | undefined {
  return claim === undefined || payload[claim] === undefined ? undefined : parseClaim(instanceIdsSchema, payload, claim);
}

/** The device the token is bound to, in the format the request body's `deviceId` must have. */
export function readDeviceId(payload: JWTPayload, claim: string | undefined): string | undefined {
  return claim === undefined || payload[claim] === undefined ? undefined : parseClaim(deviceIdSchema, payload, claim);
}

function parseClaim<T>(schema: z.ZodType<T, unknown>, payload: JWTPayload, claim: string): T {
  const parsed = schema.safeParse(payload[claim]);
  if (!parsed.success) throw new UnauthenticatedError(`token has a malformed "${claim}" claim`, true);
  return parsed.data;
}
