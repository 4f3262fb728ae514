import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: ['src/index.ts', 'src/cli.ts'],
    format: ['esm'],
    // Tests build without declarations (MPTJS_SKIP_DTS=1): they take most of the build time.
    dts: process.env['MPTJS_SKIP_DTS'] !== '1',
    sourcemap: true,
    clean: true,
    target: 'node20',
    // Dawn's native addon must load from its own package directory.
    external: ['webgpu'],
  },
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
