import { tsupConfig } from '../../tools/build/tsup-config.mjs';

// The worker is its own entry: worker_threads load it by file URL next to index.js.
export default tsupConfig({
  entry: ['src/index.ts', 'src/worker.ts'],
  dtsEntry: 'src/index.ts',
  external: ['webgpu', 'tokenizers'],
});
