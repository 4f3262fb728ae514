import { tsupConfig } from '../../tools/build/tsup-config.mjs';

export default tsupConfig({
  entry: ['src/index.ts', 'src/testing/fsdp-rank.ts'],
  dtsEntry: 'src/index.ts',
  external: ['webgpu'],
});
