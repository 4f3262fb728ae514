// Where the repository's own model fixtures live (`fixtures/` at the repository root, written by
// fixtures/make_fixtures.py); tests use them, and so can other packages' tests.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's `fixtures/` directory. */
export const FIXTURES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../fixtures');

/** Names of the model fixtures (directories with a config.json and expected.safetensors). */
export function modelFixtureNames(): string[] {
  return readdirSync(FIXTURES_DIR)
    .filter((n) => existsSync(join(FIXTURES_DIR, n, 'config.json')))
    .sort();
}
