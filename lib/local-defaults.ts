/**
 * The embedded defaults of `STAGE=local`: where `npm start` runs its stand-ins on 127.0.0.1.
 * `lib/config.ts` reads them only when STAGE=local; `local/start.ts` starts servers at these addresses.
 * The key below is the local gs emulator's only; it opens nothing anywhere else.
 */
const HOST = '127.0.0.1';

export const LOCAL_PORTS = {
  api: 3000,
  gsEmulator: 4510,
  devIssuer: 4520,
  dynamodb: 4530,
  demoPage: 4540,
} as const;

const devIssuerUrl = `http://${HOST}:${LOCAL_PORTS.devIssuer}/`;

export const LOCAL = {
  host: HOST,
  devIssuerUrl,
  audience: 'cloudphone-stream-api',
  issuers: [
    {
      name: 'dev',
      issuer: devIssuerUrl,
      audiences: ['cloudphone-stream-api'],
      jwksUri: `${devIssuerUrl}.well-known/jwks.json`,
      algorithms: ['ES256', 'RS256'],
      requiredScopes: ['cloudphone:stream'],
      instancesClaim: 'cloudphone_instances',
      deviceClaim: 'device_id',
    },
  ],
  entitlementsFile: 'local/demo-grants.json',
  tableName: 'cloudphone-stream-tokens-local',
  dynamodbEndpoint: `http://${HOST}:${LOCAL_PORTS.dynamodb}`,
  secretId: 'local-emulator-secret-id',
  secretKey: 'local-emulator-secret-key-not-for-production',
  gsEndpoint: `http://${HOST}:${LOCAL_PORTS.gsEmulator}`,
  corsAllowedOrigins: [`http://${HOST}:${LOCAL_PORTS.demoPage}`],
  demoSubject: 'demo-user',
  demoInstanceIds: [
    'RK8S37P1402445261_3f86d6f5-2db9-4903-a70d-889987c9b2ac',
    'RK8S37P1402445261_95de5774-0f9f-4cc2-aa67-58d41378d209',
  ],
  demoDeviceId: 'dc1079f85676',
};
