import { tsupConfig } from '../../tools/build/tsup-config.mjs';

export default tsupConfig({
  entry: ['src/index.ts', 'src/testing/collective-rank.ts'],
  dtsEntry: 'src/index.ts',
});
