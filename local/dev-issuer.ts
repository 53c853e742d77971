/**
 * A DEV-ONLY token issuer for `npm start`, the demo page and tests: a key pair made at start-up,
 * its public half at `/.well-known/jwks.json`, and `POST /token`, which signs whatever subject it is
 * asked for. It authenticates nobody, so it listens on 127.0.0.1 only and lives outside lib/.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { z } from 'zod';
import { LOCAL, LOCAL_PORTS } from '../lib/local-defaults';

export type DevIssuerAlgorithm = 'ES256' | 'RS256';

export interface DevIssuerOptions {
  /** Default LOCAL_PORTS.devIssuer; 0 picks a free port (tests). */
  port?: number;
  /** Default: LOCAL's dev issuer on its own port, else `http://127.0.0.1:<port>/`. */
  issuer?: string;
  /** Default ES256. */
  algorithm?: DevIssuerAlgorithm;
}

export interface DevClaims extends JWTPayload {
  sub: string;
  scope?: string;
  cloudphone_instances?: string[];
  device_id?: string;
}

export interface MintOptions {
  /** jose time span, e.g. `'10m'`. Default `'1h'`. */
  expiresIn?: string;
  /** Default LOCAL.audience. */
  audience?: string | string[];
}

export interface DevIssuer {
  /** Base URL of the server, ending in `/`. */
  url: string;
  /** The `iss` its tokens carry. */
  issuer: string;
  jwksUri: string;
  /** Signs a token; `iss`, `aud`, `iat` and `exp` are always set here, overriding the claims given. */
  mint(claims: DevClaims, options?: MintOptions): Promise<string>;
  close(): Promise<void>;
}

const DEFAULT_SCOPE = 'cloudphone:stream';
const MAX_BODY_BYTES = 16 * 1024;

const tokenRequestSchema = z.looseObject({ sub: z.string().min(1) });

export async function startDevIssuer(options: DevIssuerOptions = {}): Promise<DevIssuer> {
  const algorithm = options.algorithm ?? 'ES256';
  // The private key stays non-extractable: only the public half is ever exported.
  const { privateKey, publicKey } = await generateKeyPair(algorithm);
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const jwks = { keys: [{ ...publicJwk, kid, alg: algorithm, use: 'sig' } satisfies JWK] };

  const server = createServer();
  const requestedPort = options.port ?? LOCAL_PORTS.devIssuer;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(requestedPort, LOCAL.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${LOCAL.host}:${port}/`;
  const issuer =
    options.issuer ?? (requestedPort === LOCAL_PORTS.devIssuer ? (LOCAL.issuers[0]?.issuer ?? url) : url);
  const jwksUri = `${url}.well-known/jwks.json`;

  const mint = (claims: DevClaims, mintOptions: MintOptions = {}): Promise<string> =>
    new SignJWT({ scope: DEFAULT_SCOPE, ...claims })
      .setProtectedHeader({ alg: algorithm, kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(mintOptions.audience ?? LOCAL.audience)
      .setIssuedAt()
      .setExpirationTime(mintOptions.expiresIn ?? '1h')
      .sign(privateKey);

  const discovery = {
    issuer,
    jwks_uri: jwksUri,
    token_endpoint: `${url}token`,
    id_token_signing_alg_values_supported: [algorithm],
    scopes_supported: [DEFAULT_SCOPE],
  };

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const route = `${request.method ?? ''} ${(request.url ?? '/').split('?')[0]}`;
    switch (route) {
      case 'GET /.well-known/jwks.json':
        return sendJson(response, 200, jwks);
      case 'GET /.well-known/openid-configuration':
        return sendJson(response, 200, discovery);
      case 'OPTIONS /token':
        response.writeHead(204, {
          ...CORS,
          'Access-Control-Allow-Methods': 'POST',
          'Access-Control-Allow-Headers': 'Content-Type',
        });
        return response.end();
      case 'POST /token':
        return void handleTokenRequest(request, response, mint).catch(() => sendJson(response, 500, { error: 'server_error' }));
      default:
        return sendJson(response, 404, { error: 'not_found' });
    }
  });

  return {
    url,
    issuer,
    jwksUri,
    mint,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** The demo page calls `/token` from another local origin; the keys are public and the tokens worthless elsewhere. */
const CORS = { 'Access-Control-Allow-Origin': '*' };

async function handleTokenRequest(
  request: IncomingMessage,
  response: ServerResponse,
  mint: (claims: DevClaims) => Promise<string>,
): Promise<void> {
  const parsed = tokenRequestSchema.safeParse(await readJson(request));
  if (!parsed.success) {
    return sendJson(response, 400, { error: 'invalid_request', error_description: 'body must be a JSON object with a non-empty "sub"' });
  }
  const token = await mint(parsed.data);
  const { iat = 0, exp = 0 } = decodeJwt(token);
  sendJson(response, 200, { access_token: token, token_type: 'Bearer', expires_in: exp - iat });
}

/** The parsed body, or undefined when it is too large or not JSON. Reads to the end so the reply still reaches the client. */
async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { ...CORS, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  response.end(JSON.stringify(body));
}
