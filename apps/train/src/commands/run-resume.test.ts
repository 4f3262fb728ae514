// Crash and resume with real processes: the run is killed with SIGKILL (once between steps, once while a
// checkpoint is being written), then continued with --autoresume; every step's loss must equal the straight run's.
import { existsSync, mkdtempSync, readdirSync, readFileSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyRun } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { cliBuilt, runCliToEnd, startCli, stepMetrics } from '../testing/child-cli.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!cliBuilt)('mptjs-train run --autoresume after SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mptjs-cli-resume-'));
  const config = writeTinyRun(dir, { maxDuration: '6ba', saveInterval: '1ba' });
  const common = ['--backend', 'wasm'];

  it('resumes bit-exactly after a kill between steps and after a kill mid-checkpoint', async () => {
    const straightDir = join(dir, 'straight');
    expect((await runCliToEnd(['run', config, '--run-dir', straightDir, ...common])).code).toBe(0);
    const straight = stepMetrics(straightDir);
    expect(straight.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);

    // 1) Killed once step 3's metrics are written (somewhere in step 4, or while checkpointing step 3).
    const a = join(dir, 'killed-between');
    const first = startCli(['run', config, '--run-dir', a, ...common]);
    while (!existsSync(join(a, 'metrics.jsonl')) || stepMetrics(a).length < 3) await sleep(10);
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    const resumedA = await runCliToEnd(['run', config, '--run-dir', a, '--autoresume', ...common]);
    expect(resumedA.code).toBe(0);
    expect(resumedA.stdout).toMatch(/resumed from .*ba0000000\d at batch \d/);
    expect(stepMetrics(a)).toEqual(straight);

    // 2) Killed the moment the step-4 checkpoint's temporary directory appears.
    const b = join(dir, 'killed-mid-write');
    const second = startCli(['run', config, '--run-dir', b, ...common]);
    while (!existsSync(join(b, 'checkpoints'))) await sleep(5);
    let sawTemp = false;
    const watcher = watch(join(b, 'checkpoints'), (_event, name) => {
      if (!sawTemp && name?.startsWith('.tmp-ba00000004')) {
        sawTemp = true;
        second.child.kill('SIGKILL');
      }
    });
    await second.done;
    watcher.close();
    expect(sawTemp).toBe(true);
    // The previous checkpoint is intact and `latest` still names a complete one.
    const latest = readFileSync(join(b, 'checkpoints/latest'), 'utf8').trim();
    expect(['ba00000003', 'ba00000004']).toContain(latest);
    expect(readdirSync(join(b, 'checkpoints', latest)).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'state.json',
      'tokenizer.json',
    ]);
    const resumedB = await runCliToEnd(['run', config, '--run-dir', b, '--autoresume', ...common]);
    expect(resumedB.code).toBe(0);
    expect(stepMetrics(b)).toEqual(straight);
    // The crashed writer's leftovers are gone; keep-last-2 pruning holds.
    expect(readdirSync(join(b, 'checkpoints')).sort()).toEqual(['ba00000005', 'ba00000006', 'latest']);
  });
});
