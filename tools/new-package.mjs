// Writes the common build/test files of a workspace package (package.json is written by hand).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...entries] = process.argv.slice(2);
const write = (file, text) => {
  const path = join(dir, file);
  if (!existsSync(path)) writeFileSync(path, text);
};
mkdirSync(join(dir, 'src'), { recursive: true });
write(
  'tsconfig.json',
  JSON.stringify(
    { extends: '../../tsconfig.base.json', include: ['src'], compilerOptions: { noEmit: true } },
    null,
    2,
  ) + '\n',
);
// The build options live in tools/build/tsup-config.mjs; a package names only its entries and externals.
write(
  'tsup.config.ts',
  `import { tsupConfig } from '../../tools/build/tsup-config.mjs';

export default tsupConfig(${entries.length ? `{ entry: [${entries.map((e) => `'${e}'`).join(', ')}] }` : ''});
`,
);
write(
  'vitest.config.ts',
  `import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
`,
);
