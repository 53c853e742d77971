import { z } from 'zod';
import { parseRate } from '../rate';

/** Asymmetric JWS algorithms only: `none` and every `HS*` are refused at configuration time. */
export const ALLOWED_ALGORITHMS = [
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA', 'Ed25519',
] as const;

/** `N/<seconds>s`, parsed into a Rate once, at configuration time. */
const rateString = z.string().transform((raw, context) => {
  try {
    return parseRate(raw);
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const claimName = z.string().min(1).max(128);

const jwkSchema = z.looseObject({ kty: z.string() });

export const issuerSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "-" or "_" (up to 63)'),
    issuer: z.string().min(1),
    audiences: z.array(z.string().min(1)).min(1),
    jwksUri: z.url({ protocol: /^https?$/ }).optional(),
    jwks: z.strictObject({ keys: z.array(jwkSchema).min(1) }).optional(),
    algorithms: z
      .array(
        z.string().refine((alg) => (ALLOWED_ALGORITHMS as readonly string[]).includes(alg), {
          message: `must be an asymmetric algorithm (${ALLOWED_ALGORITHMS.join(', ')}); none and HS* are never accepted`,
        }),
      )
      .min(1),
    subjectClaim: claimName.default('sub'),
    requiredScopes: z.array(z.string().min(1)).default([]),
    instancesClaim: claimName.optional(),
    deviceClaim: claimName.optional(),
    rateLimit: z
      .strictObject({ perCaller: rateString.optional(), perIssuer: rateString.optional() })
      .optional(),
  })
  .refine((issuer) => (issuer.jwksUri === undefined) !== (issuer.jwks === undefined), {
    message: 'exactly one of jwksUri or jwks is required',
  });

export const issuerListSchema = z
  .array(issuerSchema)
  .min(1)
  .refine((list) => new Set(list.map((i) => i.issuer)).size === list.length, { message: 'each issuer must appear once' })
  .refine((list) => new Set(list.map((i) => i.name)).size === list.length, { message: 'each name must appear once' });

export type IssuerConfig = z.infer<typeof issuerSchema>;
