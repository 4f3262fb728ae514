// The repository's own files (the sample corpus, the checkpoint fixtures, the examples), for tests that read them.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is tools/test-fixtures/src/repo.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** An absolute path under the repository root. */
export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}
