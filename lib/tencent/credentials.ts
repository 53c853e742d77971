/**
 * Where the Tencent Cloud API keys come from. The shape is the SDK's `DynamicCredential`, so a provider can be
 * handed to CommonClient as is. Deployed stages read the keys from Secrets Manager with a TTL cache, so rotating
 * the secret takes effect within one TTL and needs no redeploy.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { z } from 'zod';

export interface TencentCredential {
  secretId: string;
  secretKey: string;
  /** Temporary-credential token (`X-TC-Token`); unused with long-term keys. */
  token?: string;
}

export interface CredentialProvider {
  getCredential(): Promise<TencentCredential>;
}

/** The slice of a logger these modules use; the Powertools Logger satisfies it. */
export interface WarnLogger {
  warn(message: string, attributes: Record<string, unknown>): void;
}

export class CredentialsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CredentialsError';
  }
}

export function staticCredentials(secretId: string, secretKey: string): CredentialProvider {
  const credential: TencentCredential = Object.freeze({ secretId, secretKey });
  return { getCredential: () => Promise.resolve(credential) };
}

const secretSchema = z.object({ secretId: z.string().min(1), secretKey: z.string().min(1) });

/** A failed refresh keeps serving the last good value for this long (at most one TTL) before trying again. */
const RETRY_AFTER_FAILURE_MS = 30_000;

/**
 * The SDK sets no request timeout (and its handler only warns on one unless told to throw): a Secrets
 * Manager (or VPC endpoint) that stops answering would hold every request of a cold container until
 * the Lambda timeout. Two attempts of at most 1.5 s each.
 */
const defaultClient = (): SecretsManagerClient =>
  new SecretsManagerClient({ maxAttempts: 2, requestHandler: new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: 1500, throwOnRequestTimeout: true }) });

export interface SecretsManagerCredentialsOptions {
  client?: SecretsManagerClient;
  /** How long a fetched value is used before Secrets Manager is asked again; default 5 minutes. */
  ttlMs?: number;
  logger?: WarnLogger;
}

/**
 * Keys from a Secrets Manager secret whose SecretString is `{"secretId": "...", "secretKey": "..."}`.
 * Only a container that has no value yet waits for Secrets Manager. Once a value is held, an expired one
 * is still served while one refresh runs in the background (stale-while-revalidate), so a slow or
 * failing Secrets Manager never delays a request; a failed refresh keeps the last good value and is
 * retried later. Errors name the secret, never its values.
 */
export function secretsManagerCredentials(secretArn: string, options: SecretsManagerCredentialsOptions = {}): CredentialProvider {
  const client = options.client ?? defaultClient();
  const ttlMs = options.ttlMs ?? 5 * 60 * 1000;
  const secretName = secretNameOf(secretArn);
  let cached: { value: TencentCredential; expiresAt: number } | undefined;
  let refreshing: Promise<TencentCredential> | undefined;

  const refresh = async (): Promise<TencentCredential> => {
    try {
      const value = await fetchSecret(client, secretArn, secretName);
      cached = { value, expiresAt: Date.now() + ttlMs };
      return value;
    } catch (error) {
      if (!cached) throw error;
      options.logger?.warn('Refreshing the Tencent Cloud credentials failed; using the last good value', {
        secret: secretName,
        error: error instanceof Error ? error.message : String(error),
      });
      cached = { value: cached.value, expiresAt: Date.now() + Math.min(ttlMs, RETRY_AFTER_FAILURE_MS) };
      return cached.value;
    } finally {
      refreshing = undefined;
    }
  };

  return {
    getCredential() {
      if (cached) {
        // Never rejects: with a value held, a failed refresh resolves to that value.
        if (Date.now() >= cached.expiresAt) refreshing ??= refresh();
        return Promise.resolve(cached.value);
      }
      refreshing ??= refresh();
      return refreshing;
    },
  };
}

/** `arn:aws:secretsmanager:<region>:<account>:secret:<name>` → `<name>`; a bare name is returned as is. */
function secretNameOf(secretArn: string): string {
  const marker = ':secret:';
  const at = secretArn.indexOf(marker);
  return at === -1 ? secretArn : secretArn.slice(at + marker.length);
}

async function fetchSecret(client: SecretsManagerClient, secretArn: string, secretName: string): Promise<TencentCredential> {
  let secretString: string | undefined;
  try {
    ({ SecretString: secretString } = await client.send(new GetSecretValueCommand({ SecretId: secretArn })));
  } catch (error) {
    throw new CredentialsError(`Cannot read Secrets Manager secret "${secretName}"`, { cause: error });
  }
  if (secretString === undefined) throw new CredentialsError(`Secrets Manager secret "${secretName}" has no SecretString`);
  let json: unknown;
  try {
    json = JSON.parse(secretString);
  } catch {
    // No cause: JSON.parse's message quotes the text, i.e. the secret.
    throw new CredentialsError(`Secrets Manager secret "${secretName}" is not JSON`);
  }
  const result = secretSchema.safeParse(json);
  if (!result.success) {
    const fields = [...new Set(result.error.issues.map((issue) => issue.path.map(String).join('.') || '(root)'))].join(', ');
    throw new CredentialsError(
      `Secrets Manager secret "${secretName}" must be {"secretId": "...", "secretKey": "..."} with non-empty strings; bad: ${fields}`,
    );
  }
  return Object.freeze({ secretId: result.data.secretId, secretKey: result.data.secretKey });
}
