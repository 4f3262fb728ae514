import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { sharedDir, sharedFile } from './shared-files.js';

const dir = mkdtempSync(join(tmpdir(), 'test-fixtures-'));
mkdirSync(join(dir, 'data'));
writeFileSync(join(dir, 'data', 'present.json'), '{}');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());

describe('sharedFile', () => {
  it('finds a file under MPTJS_SHARED_DIR', () => {
    vi.stubEnv('MPTJS_SHARED_DIR', dir);
    expect(sharedDir()).toBe(dir);
    expect(sharedFile('data/present.json')).toBe(join(dir, 'data', 'present.json'));
  });

  it('skips a missing file with a visible notice outside CI', () => {
    vi.stubEnv('MPTJS_SHARED_DIR', dir);
    vi.stubEnv('CI', '');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(sharedFile('data/absent.json')).toBeUndefined();
    expect(warn).toHaveBeenCalledWith(
      `[skip] shared file missing: ${join(dir, 'data', 'absent.json')} (set MPTJS_SHARED_DIR)`,
    );
    warn.mockRestore();
  });

  it('fails on a missing file under CI=true', () => {
    vi.stubEnv('MPTJS_SHARED_DIR', dir);
    vi.stubEnv('CI', 'true');
    expect(() => sharedFile('data/absent.json')).toThrow(
      `shared file missing: ${join(dir, 'data', 'absent.json')} (set MPTJS_SHARED_DIR)`,
    );
  });
});
