import { z } from 'zod';
import { ConfigError, formatIssues, readJsonFile } from '../config';
import type { EntitlementStore } from './store';
import { instanceIdSchema } from '../request';

const grantsFileSchema = z.strictObject({
  grants: z
    .array(z.strictObject({ issuer: z.string().min(1), subject: z.string().min(1), instanceIds: z.array(instanceIdSchema) }))
    .default([]),
  pools: z.array(z.strictObject({ issuer: z.string().min(1), instanceIds: z.array(instanceIdSchema) })).default([]),
});

export type GrantsDocument = z.input<typeof grantsFileSchema>;

/** Grants and pools from a JSON file, validated and indexed once at load; lookups are then in memory. */
export class FileEntitlementStore implements EntitlementStore {
  private readonly grants = new Map<string, string[]>();
  private readonly pools = new Map<string, string[]>();

  static fromFile(path: string): FileEntitlementStore {
    return FileEntitlementStore.fromDocument(readJsonFile('ENTITLEMENTS_FILE', path), path);
  }

  static fromDocument(document: unknown, source = 'document'): FileEntitlementStore {
    const result = grantsFileSchema.safeParse(document);
    if (!result.success) {
      throw new ConfigError('ENTITLEMENTS_FILE', `(${source}) is invalid: ${formatIssues(result.error)}`);
    }
    return new FileEntitlementStore(result.data);
  }

  private constructor(document: z.output<typeof grantsFileSchema>) {
    for (const grant of document.grants) {
      const key = callerKey(grant.issuer, grant.subject);
      this.grants.set(key, union(this.grants.get(key), grant.instanceIds));
    }
    for (const pool of document.pools) {
      this.pools.set(pool.issuer, union(this.pools.get(pool.issuer), pool.instanceIds));
    }
  }

  async grantedInstanceIds(issuer: string, subject: string): Promise<string[]> {
    return this.grants.get(callerKey(issuer, subject)) ?? [];
  }

  async poolInstanceIds(issuer: string): Promise<string[]> {
    return this.pools.get(issuer) ?? [];
  }
}

/** A NUL separator cannot occur in either part, so distinct callers never share a key. */
const callerKey = (issuer: string, subject: string): string => `${issuer}\u0000${subject}`;

const union = (existing: string[] | undefined, added: string[]): string[] => [...new Set([...(existing ?? []), ...added])];
