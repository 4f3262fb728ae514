// Two ranks (`--nproc 2`: FSDP FULL_SHARD, worker threads over shared memory) against one process on the same
// config: the global batch and its data are the same, so losses and gradient norms agree to float32
// reduction-order noise; a two-rank checkpoint resumes with two ranks as child processes over TCP
// (`--local-ranks process`), so both launch paths are held to the one-rank run.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyRun } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { allAgree, cliBuilt, runCliToEnd, stepMetrics, stepsAgree } from '../testing/child-cli.js';

describe.skipIf(!cliBuilt)('mptjs-train run --nproc 2 (FSDP over threads, then processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mptjs-cli-fsdp-'));
  const config = writeTinyRun(dir, { maxDuration: '4ba', saveInterval: '2ba' });
  const common = ['--backend', 'wasm', '--set', 'scheduler.t_max=4ba'];

  it('matches the single-process run and resumes from a sharded checkpoint', async () => {
    const single = join(dir, 'single');
    expect((await runCliToEnd(['run', config, '--run-dir', single, ...common])).code).toBe(0);
    const ranks = join(dir, 'ranks');
    const first = await runCliToEnd([
      'run',
      config,
      '--run-dir',
      ranks,
      '--nproc',
      '2',
      ...common,
      '--set',
      'max_duration=2ba',
    ]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('[mptjs] 2 ranks, FSDP FULL_SHARD');
    expect(readdirSync(join(ranks, 'checkpoints/ba00000002')).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.rank0-of-2.safetensors',
      'optimizer.rank1-of-2.safetensors',
      'state.json',
      'tokenizer.json',
    ]);
    const second = await runCliToEnd([
      'run',
      config,
      '--run-dir',
      ranks,
      '--nproc',
      '2',
      '--local-ranks',
      'process',
      '--autoresume',
      ...common,
    ]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/resumed from .*ba00000002 at batch 2/);

    const want = stepMetrics(single);
    const got = stepMetrics(ranks);
    expect(got.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(stepsAgree(want, got, 1e-5)).toEqual(allAgree(want.length));
    // A one-rank resume of a two-rank checkpoint is refused with the reason.
    const mismatch = await runCliToEnd([
      'run',
      config,
      '--run-dir',
      ranks,
      '--autoresume',
      ...common,
      '--set',
      'max_duration=6ba',
    ]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain(
      'was written by 2 rank(s); resume it with the same world size (this run has 1)',
    );
  });

  it('checks --local-ranks before launching anything', async () => {
    const bogus = await runCliToEnd(['run', config, '--nproc', '2', '--local-ranks', 'fiber']);
    expect(bogus.code).not.toBe(0);
    expect(bogus.stderr).toContain("expected 'thread' or 'process'");
    const alone = await runCliToEnd(['run', config, '--local-ranks', 'thread']);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain('--local-ranks needs --nproc');
    const multi = await runCliToEnd([
      'run',
      config,
      '--nproc',
      '2',
      '--local-ranks',
      'thread',
      '--nnodes',
      '2',
      '--node-rank',
      '0',
    ]);
    expect(multi.code).toBe(1);
    expect(multi.stderr).toContain('--local-ranks thread runs one node only');
  });
});
