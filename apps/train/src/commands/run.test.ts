import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { writeTinyRun } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { cliBuilt, runCliToEnd, stepMetrics } from '../testing/child-cli.js';

const SERVE_CLI = join(dirname(fileURLToPath(import.meta.url)), '../../../serve/dist/cli.js');

describe.skipIf(!cliBuilt)('mptjs-train run (built CLI, child process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mptjs-cli-run-'));
  const config = writeTinyRun(dir);

  it('prints the resolved config and backend, trains, and exports a loadable HF directory', async () => {
    const runDir = join(dir, 'run');
    const r = await runCliToEnd([
      'run',
      config,
      '--run-dir',
      runDir,
      '--backend',
      'wasm',
      '--set',
      'max_duration=4ba',
      '--set',
      'optimizer.lr=2e-3',
    ]);
    expect(r.stderr).not.toMatch(/mptjs-train:/);
    expect(r.code).toBe(0);
    const printed = r.stdout.slice(0, r.stdout.indexOf('[mptjs] backend='));
    expect(printed).toMatch(/^# resolved config/);
    expect(printed).toMatch(/^max_duration: 4ba$/m);
    expect(printed).toMatch(/^optimizer:\n {2}name: decoupled_adamw\n {2}lr: 0\.002$/m);
    expect(printed).toMatch(/^model:\n(?: {2}.*\n)*? {2}max_seq_len: 32$/m); // interpolated
    expect(printed).not.toContain('${');
    expect(r.stdout).toMatch(/\[mptjs\] backend=wasm \(requested\)/);
    expect(r.stdout).toMatch(/\[batch=4\] loss=[\d.]+ lr=\S+ grad_norm=[\d.]+ tok\/s=\d+ mfu=[\d.]+%/);
    expect(stepMetrics(runDir).map((m) => m.step)).toEqual([1, 2, 3, 4]);
    const exported = await loadCheckpoint(join(runDir, 'export'));
    expect(exported.stateDict.get('transformer.wte.weight')!.shape).toEqual([264, 32]);
    expect(readFileSync(join(runDir, 'export/tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(dir, 'tokenizer.json'), 'utf8'),
    );
    expect(readdirSync(join(runDir, 'checkpoints')).sort()).toEqual(['ba00000003', 'ba00000004', 'latest']);

    // mptjs-serve loads the export and generates from it (when that app is built).
    if (existsSync(SERVE_CLI)) {
      const gen = spawnSync(
        process.execPath,
        [
          SERVE_CLI,
          'generate',
          join(runDir, 'export'),
          '--prompt',
          'the quick',
          '--max-new-tokens',
          '4',
          '--json',
        ],
        {
          encoding: 'utf8',
        },
      );
      expect(gen.status).toBe(0);
      const out = JSON.parse(gen.stdout.trim().split('\n').at(-1)!) as { ids: number[] };
      expect(out.ids).toHaveLength(4);
      for (const id of out.ids) expect(id).toBeLessThan(264);
    }
  });

  it('exits 1 naming the unknown key, and 2 on a usage error', async () => {
    const bad = await runCliToEnd([
      'run',
      config,
      '--run-dir',
      join(dir, 'bad'),
      '--set',
      'optimizer.betaz=[0.9,0.9]',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown config key "optimizer.betaz"');
    const backend = await runCliToEnd(['run', config, '--backend', 'tpu']);
    expect(backend.code).toBe(1);
    expect(backend.stderr).toContain('unknown backend "tpu"');
    const usage = await runCliToEnd(['run']);
    expect(usage.code).toBe(2);
  });

  it('names the microbatch when the wasm heap runs out, instead of the engine abort', async () => {
    // 4 x 32 tokens over a 4M-entry vocabulary: the logits alone are 2.1 GB, with their gradient past 4 GiB.
    const r = await runCliToEnd([
      'run',
      config,
      '--run-dir',
      join(dir, 'oom'),
      '--backend',
      'wasm',
      '--set',
      'model.vocab_size=4194304',
      '--set',
      'model.d_model=8',
      '--set',
      'model.n_heads=2',
      '--set',
      'device_train_microbatch_size=4',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /mptjs-train: the wasm backend ran out of its 4 GiB heap in a microbatch of 4 x 32 tokens \(the logits alone are 2147 MB.*lower device_train_microbatch_size/,
    );
  }, 300_000);
});
