import { tsupConfig } from '../../tools/build/tsup-config.mjs';

export default tsupConfig();
