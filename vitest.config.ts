import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Tests share one machine with 2 cores: run files one after another so the
    // training-heavy ones don't starve the timing-sensitive service tests.
    fileParallelism: false,
    globalSetup: ['test/global-setup.ts'],
  },
});
