/**
 * The port behind which grants and partner pools live. Two adapters implement it: a JSON file
 * (`ENTITLEMENTS_FILE`, small static setups) and the DynamoDB table (`TABLE_NAME`).
 */
export interface EntitlementStore {
  /** Instances granted to this exact caller (issuer + subject). */
  grantedInstanceIds(issuer: string, subject: string): Promise<string[]>;
  /** The partner pool of an issuer: the most its `instancesClaim` can reach. */
  poolInstanceIds(issuer: string): Promise<string[]>;
}
