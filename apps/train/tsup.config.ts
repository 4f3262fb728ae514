import { tsupConfig } from '../../tools/build/tsup-config.mjs';

export default tsupConfig({ entry: ['src/index.ts', 'src/cli.ts'], external: ['webgpu'] });
