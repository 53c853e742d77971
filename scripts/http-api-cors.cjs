/**
 * API Gateway's CORS configuration, from the same CORS_ALLOWED_ORIGINS the function reads: the
 * gateway answers preflights and stamps CORS headers on every response, and serverless-offline
 * mimics it only when this is set (without it, offline reflects any origin with credentials).
 * No origins means no CORS at all: browsers on other origins cannot read the API.
 */
module.exports = () => {
  const origins = (process.env.CORS_ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  if (origins.length === 0) return false;
  return {
    allowedOrigins: origins,
    allowedMethods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedResponseHeaders: ['X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After', 'WWW-Authenticate'],
    maxAge: 600,
  };
};
