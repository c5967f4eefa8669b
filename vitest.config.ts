import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Three files at once on two cores: the tests mostly wait on real servers and processes (serial took 13 min).
    maxWorkers: 3,
    globalSetup: ['test/helpers/nginx-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
