import { defineConfig } from 'tsup';
import { tsupConfig } from '../../tools/build/tsup-config.mjs';

export default defineConfig([
  // Tests build without declarations (MPTJS_SKIP_DTS=1): they take most of the build time.
  tsupConfig({
    entry: ['src/index.ts', 'src/cli.ts'],
    dts: process.env['MPTJS_SKIP_DTS'] !== '1',
    external: ['webgpu'],
  }),
  {
    // The playground page: its script bundled for browsers, its HTML and CSS copied beside it.
    entry: { playground: 'src/playground/playground.ts' },
    outDir: 'dist/playground',
    format: ['esm'],
    platform: 'browser',
    target: 'es2022',
    publicDir: 'src/playground/static',
    sourcemap: true,
    clean: true,
  },
]);
