import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Fixture tests read checkpoints with hf-loader's sources, which import this package: point that import at
    // these sources so no build (and no package-graph cycle) is needed.
    alias: { '@mptjs/mpt-model': fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
  },
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
