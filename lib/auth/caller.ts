/** Who is asking, as established from a verified JWT. Holds no part of the token itself. */
export interface Caller {
  /** The registry entry's short name (`AUTH_ISSUERS[].name`), used in logs and rate-limit keys. */
  issuerName: string;
  /** The exact `iss` value, the key of grants, pools and revocations. */
  issuer: string;
  subject: string;
  scopes: string[];
  /** Instance IDs the token claims (`instancesClaim`), undefined when the issuer has no such claim or the token lacks it. */
  claimedInstanceIds: string[] | undefined;
  /** The device the token is bound to (`deviceClaim`), if any. */
  deviceId: string | undefined;
}
