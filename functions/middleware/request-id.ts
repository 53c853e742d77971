import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

const generated = new WeakMap<object, string>();

/** serverless-offline puts this same constant in every event, which would make every local request look alike. */
const OFFLINE_PLACEHOLDER = 'offlineContext_resourceId';

/** The API Gateway request id, or one generated once per event where the gateway gave none (local runs). */
export function requestIdOf(event: APIGatewayProxyEventV2): string {
  const fromGateway = event.requestContext?.requestId;
  if (fromGateway && fromGateway !== OFFLINE_PLACEHOLDER) return fromGateway;
  let id = generated.get(event);
  if (!id) {
    id = randomUUID();
    generated.set(event, id);
  }
  return id;
}
