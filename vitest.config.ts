import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The Temporal native bridge crashes under worker threads.
    pool: 'forks',
    // Request and worker logs stay out of the test output; a test file may ask for more (test/logging.test.ts).
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    projects: [
      // Pure code and time-skipping workflow tests with fake activities: seconds, no services.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // Real Temporal, real PostgreSQL, real drivers.
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
