import { tsupConfig } from '../../tools/build/tsup-config.mjs';

// The worker is its own entry (encodeBatch loads it next to index.js); the corpus generator feeds the bench.
export default tsupConfig({
  entry: {
    index: 'src/index.ts',
    'encode-worker': 'src/encode-worker.ts',
    'testing/corpus': 'src/testing/corpus.ts',
  },
  dtsEntry: 'src/index.ts',
});
