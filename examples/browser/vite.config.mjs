import { realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The page imports the workspace packages' built ESM (pnpm --filter <pkg> build) and the tfjs copies they
// resolve to, so that one tfjs-core (one engine, one kernel registry) is bundled.
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const pkg = (name) => join(repo, 'packages', name, 'dist/index.js');
const tfjs = (name) => realpathSync(join(repo, 'packages/kernels/node_modules/@tensorflow', name));

export default defineConfig({
  resolve: {
    alias: {
      '@mptjs/tokenizer': pkg('tokenizer'),
      '@mptjs/kernels': pkg('kernels'),
      '@mptjs/alibi-attention': pkg('alibi-attention'),
      '@mptjs/mpt-model': pkg('mpt-model'),
      '@tensorflow/tfjs-backend-wasm': tfjs('tfjs-backend-wasm'),
      '@tensorflow/tfjs-core': tfjs('tfjs-core'),
    },
    dedupe: ['@tensorflow/tfjs-core'],
  },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    // @mptjs/kernels loads Dawn with `import('webgpu')` only in Node (when navigator.gpu is absent). The
    // specifier is a string literal, so Rollup would bundle that Node-only package and fail on its `module` /
    // `node:url` imports; keep it external: in a browser without WebGPU the import fails at run time and the page
    // falls back to wasm.
    rollupOptions: { external: ['webgpu'] },
  },
  optimizeDeps: { exclude: ['webgpu'] },
  server: { fs: { allow: [repo] } },
});
