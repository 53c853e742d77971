/** Unit, integration and end-to-end suites share one runner; each suite starts its own loopback servers. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2023' } }] },
  transformIgnorePatterns: ['/node_modules/(?!(@middy|jose)/)'],
  testTimeout: 30000,
  maxWorkers: 2,
};
