import { defineConfig } from 'tsup';

export default defineConfig({
  // The worker is its own entry: encodeBatch loads it next to index.js.
  entry: ['src/index.ts', 'src/encode-worker.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
});
