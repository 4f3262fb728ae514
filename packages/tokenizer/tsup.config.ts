import { defineConfig } from 'tsup';

export default defineConfig({
  // The worker is its own entry (encodeBatch loads it next to index.js); the corpus generator feeds the bench.
  entry: {
    index: 'src/index.ts',
    'encode-worker': 'src/encode-worker.ts',
    'testing/corpus': 'src/testing/corpus.ts',
  },
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
});
