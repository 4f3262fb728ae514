// Finds the read-only shared files (real tokenizer, golden fixtures) for tests. Under CI=true a missing file is a
// failure; elsewhere the test is skipped with a visible message.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from './repo.js';

export function sharedDir(): string {
  return resolve(process.env['MPTJS_SHARED_DIR'] ?? join(repoRoot, '..', 'shared'));
}

/** Absolute path of a shared file, or undefined (with a printed notice) when it is absent outside CI. */
export function sharedFile(relative: string): string | undefined {
  const path = join(sharedDir(), relative);
  if (existsSync(path)) return path;
  const message = `shared file missing: ${path} (set MPTJS_SHARED_DIR)`;
  if (process.env['CI'] === 'true') throw new Error(message);
  console.warn(`[skip] ${message}`);
  return undefined;
}

export const TOKENIZER_JSON = 'data/gpt-neox-20b-tokenizer.json';
export const TINY_MOSAIC_DIR = 'fixtures/mpt-tiny-mosaic';
