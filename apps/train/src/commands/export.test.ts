import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, readSafetensorsHeader } from '@mptjs/hf-loader';
import { writeTinyRun } from '@mptjs/test-fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliBuilt, runCliToEnd } from '../testing/child-cli.js';

describe.skipIf(!cliBuilt)('mptjs-train export (built CLI, child process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mptjs-cli-export-'));
  const config = writeTinyRun(dir, { maxDuration: '4ba', saveInterval: '2ba' });
  const runDir = join(dir, 'run');

  beforeAll(async () => {
    const r = await runCliToEnd(['run', config, '--run-dir', runDir, '--backend', 'wasm']);
    expect(r.stderr).not.toMatch(/mptjs-train:/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('exports a named checkpoint: same tensors, mpt config.json, the run tokenizer', async () => {
    const ckpt = join(runDir, 'checkpoints', 'ba00000002');
    const out = join(dir, 'out-ba2');
    const r = await runCliToEnd(['export', ckpt, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(batch 2)');
    const want = await loadCheckpoint(ckpt);
    const got = await loadCheckpoint(out);
    expect(got.config).toEqual(want.config);
    expect([...got.stateDict.keys()].sort()).toEqual([...want.stateDict.keys()].sort());
    for (const [name, t] of want.stateDict) {
      const g = got.stateDict.get(name)!;
      expect(g.shape, name).toEqual(t.shape);
      expect(Array.from(g.data as Float32Array), name).toEqual(Array.from(t.data as Float32Array));
    }
    const cfgJson = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfgJson['model_type']).toBe('mpt');
    expect(cfgJson['d_model']).toBe(32);
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(dir, 'tokenizer.json'), 'utf8'),
    );
    expect(existsSync(join(out, 'optimizer.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'state.json'))).toBe(false);
  });

  it('exports RUN_DIR as its latest checkpoint, in BF16 (= the end-of-run export, rounded)', async () => {
    const out = join(dir, 'out-latest');
    const r = await runCliToEnd(['export', runDir, '--out', out, '--dtype', 'bf16']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(batch 4)');
    const header = await readSafetensorsHeader(join(out, 'model.safetensors'));
    for (const e of header.tensors.values()) expect(e.dtype).toBe('BF16');
    const final = await loadCheckpoint(join(runDir, 'export'));
    const got = await loadCheckpoint(out);
    for (const [name, t] of final.stateDict) {
      const a = t.data as Float32Array;
      const b = got.stateDict.get(name)!.data as Float32Array;
      for (let i = 0; i < a.length; i++)
        expect(Math.abs(b[i]! - a[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) / 128 + 1e-30);
    }
  });

  it('fails clearly on a directory that is not a checkpoint, and on a bad dtype', async () => {
    const bad = await runCliToEnd(['export', dir, '--out', join(dir, 'x')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('neither a training checkpoint');
    const dtype = await runCliToEnd(['export', runDir, '--out', join(dir, 'y'), '--dtype', 'F8']);
    expect(dtype.code).toBe(2);
    expect(dtype.stderr).toContain('expected one of F32, F16, BF16');
  });
});
