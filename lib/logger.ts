import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger of the service (Powertools: JSON lines with the Lambda context). Callers log chosen
 * fields only; no log statement anywhere receives a token, a JWT, an Authorization header or a key.
 */
export const logger = new Logger({ serviceName: 'cloudphone-stream-tokens' });
