import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

const generated = new WeakMap<object, string>();

/** The API Gateway request id; serverless-offline and hand-made events may lack one, so one is generated once per event. */
export function requestIdOf(event: APIGatewayProxyEventV2): string {
  const fromGateway = event.requestContext?.requestId;
  if (fromGateway) return fromGateway;
  let id = generated.get(event);
  if (!id) {
    id = randomUUID();
    generated.set(event, id);
  }
  return id;
}
