// encodeBatch runs its workers from the built dist/encode-worker.js, so tests build the package first when the
// build is missing or older than the sources.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    newest = Math.max(newest, st.isDirectory() ? newestSource(path) : st.mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  const worker = 'dist/encode-worker.js';
  if (existsSync(worker) && statSync(worker).mtimeMs >= newestSource('src')) return;
  execFileSync('pnpm', ['exec', 'tsup'], { stdio: 'inherit' });
}
