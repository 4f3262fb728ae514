import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoPath } from './repo.js';
import { FIXTURES_DIR, modelFixtureNames } from './repo-fixtures.js';

describe('repository fixtures', () => {
  it('finds the committed checkpoint fixtures, each with config.json and expected.safetensors', () => {
    expect(FIXTURES_DIR).toBe(repoPath('tools/test-fixtures/fixtures'));
    const names = modelFixtureNames();
    expect(names).toContain('mpt-f32');
    expect(names).toContain('mosaic-6heads');
    // torch-bin-cases holds pytorch_model.bin edge cases, not a model.
    expect(names).not.toContain('torch-bin-cases');
    for (const n of names) expect(existsSync(join(FIXTURES_DIR, n, 'expected.safetensors'))).toBe(true);
  });

  it('puts the repository root where its workspace manifest is', () => {
    expect(existsSync(repoPath('pnpm-workspace.yaml'))).toBe(true);
  });
});
