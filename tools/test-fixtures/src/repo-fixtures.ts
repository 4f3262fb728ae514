// The checkpoint fixtures committed beside this package (`fixtures/`, written by fixtures/make_fixtures.py): small
// checkpoints in every dialect and dtype with the logits PyTorch gives for them.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fixtures directory (tools/test-fixtures/fixtures). */
export const FIXTURES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures');

/** Names of the model fixtures: directories with a config.json and PyTorch's expected.safetensors. */
export function modelFixtureNames(): string[] {
  if (!existsSync(FIXTURES_DIR)) return [];
  return readdirSync(FIXTURES_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .filter((n) => existsSync(join(FIXTURES_DIR, n, 'config.json')))
    .filter((n) => existsSync(join(FIXTURES_DIR, n, 'expected.safetensors')))
    .sort();
}
