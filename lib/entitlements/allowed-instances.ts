import type { Caller } from '../auth/caller';
import type { EntitlementStore } from './store';

/**
 * The instances a caller may use: `grants(issuer, subject) ∪ (instancesClaim ∩ pool(issuer))`.
 * A partner's own claim never reaches beyond the pool we gave that partner; without a grant or a
 * pooled claim the answer is empty (deny by default). Returned sorted, without duplicates.
 */
export async function allowedInstanceIds(store: EntitlementStore, caller: Caller): Promise<string[]> {
  const [granted, pool] = await Promise.all([
    store.grantedInstanceIds(caller.issuer, caller.subject),
    caller.claimedInstanceIds?.length ? store.poolInstanceIds(caller.issuer) : Promise.resolve([]),
  ]);
  const poolSet = new Set(pool);
  const claimedInPool = (caller.claimedInstanceIds ?? []).filter((id) => poolSet.has(id));
  return [...new Set([...granted, ...claimedInPool])].sort();
}

/** The requested IDs the caller may not use, in request order; empty means every one is allowed. */
export function deniedInstanceIds(requested: readonly string[], allowed: readonly string[]): string[] {
  const allowedSet = new Set(allowed);
  return requested.filter((id) => !allowedSet.has(id));
}
