// encodeBatch runs its workers from a built encode-worker.js, so the tests build the package first, into
// node_modules/.cache/test-dist/ (never dist/, which a concurrent `build` task may be rewriting; and out of the
// linter's and git's way), when that build is missing or stale.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'tsup';

const TEST_DIST = 'node_modules/.cache/test-dist';

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    newest = Math.max(newest, st.isDirectory() ? newestSource(path) : st.mtimeMs);
  }
  return newest;
}

export default async function setup(): Promise<void> {
  const worker = join(TEST_DIST, 'encode-worker.js');
  if (existsSync(worker) && statSync(worker).mtimeMs >= newestSource('src')) return;
  await build({
    config: false,
    entry: { index: 'src/index.ts', 'encode-worker': 'src/encode-worker.ts' },
    format: ['esm'],
    outDir: TEST_DIST,
    clean: true,
    dts: false,
    silent: true,
    target: 'node20',
  });
}
