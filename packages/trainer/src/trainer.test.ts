import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { writeTinyRun } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { loadTrainConfig } from './config/load.js';
import { readMetrics } from './metrics/metrics-log.js';
import { explainHeapExhaustion } from './run/train-step.js';
import { train } from './trainer.js';

async function run(
  configPath: string,
  runDir: string,
  overrides: string[] = [],
  autoresume = false,
  terminal?: string[],
) {
  const { config } = loadTrainConfig(configPath, overrides);
  const lines: string[] = [];
  const result = await train({
    config,
    runDir,
    backend: 'wasm',
    autoresume,
    log: (l) => lines.push(l),
    ...(terminal ? { progress: (text: string) => terminal.push(text) } : {}),
  });
  return { result, lines };
}

describe('train() on a tiny MPT (wasm)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mptjs-train-'));
  // t_max is fixed so a shorter first leg has the same schedule as the straight run.
  const configPath = writeTinyRun(dir, { extra: '' });
  const fixedTmax = ['scheduler.t_max=6ba'];

  it('trains, logs metrics and evals, keeps the last 2 checkpoints, and exports an HF directory', async () => {
    const runDir = join(dir, 'straight');
    const { result, lines } = await run(configPath, runDir, fixedTmax);
    expect(result.steps).toBe(6);
    expect(result.timestamp).toEqual({ batches: 6, samples: 24, tokens: 768 });
    expect(lines[0]).toMatch(/^\[mptjs\] backend=wasm/);
    expect(lines.some((l) => /^\[batch=6\] loss=\d/.test(l))).toBe(true);

    const records = readMetrics(join(runDir, 'metrics.jsonl'));
    const steps = records.filter((r) => 'loss' in r);
    expect(steps.map((r) => r['step'])).toEqual([1, 2, 3, 4, 5, 6]);
    for (const r of steps) {
      for (const k of ['loss', 'lr', 'grad_norm', 'tokens', 'tokens_per_s', 'mfu', 'elapsed_s'])
        expect(typeof r[k]).toBe('number');
    }
    // Warmup from 0: the first step runs at lr 0, the second at half the peak.
    expect(steps[0]!['lr']).toBe(0);
    expect(steps[1]!['lr']).toBeCloseTo(1.5e-3, 12);
    expect(steps[0]!['tokens']).toBe(128);
    // Starts near ln(vocab) and learns.
    expect(steps[0]!['loss'] as number).toBeGreaterThan(5);
    expect(steps[5]!['loss'] as number).toBeLessThan(steps[0]!['loss'] as number);
    const evals = records.filter((r) => 'eval_loss' in r);
    expect(evals.map((r) => r['step'])).toEqual([3, 6]);
    expect(evals[0]!['eval_perplexity']).toBeCloseTo(Math.exp(evals[0]!['eval_loss'] as number), 6);
    expect(typeof evals[0]!['eval_loss/default']).toBe('number');

    expect(readdirSync(join(runDir, 'checkpoints')).sort()).toEqual(['ba00000003', 'ba00000006', 'latest']);
    expect(readFileSync(join(runDir, 'checkpoints/latest'), 'utf8').trim()).toBe('ba00000006');
    const exported = await loadCheckpoint(join(runDir, 'export'));
    expect(exported.config).toMatchObject({
      dModel: 32,
      nLayers: 2,
      vocabSize: 264,
      alibi: true,
      qkLn: true,
    });
    expect(existsSync(join(runDir, 'export/tokenizer.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(runDir, 'export/config.json'), 'utf8'))['model_type']).toBe('mpt');
  });

  it("resumes exactly: 3 steps, then 3 more from the checkpoint, give the straight run's losses bit for bit", async () => {
    const straight = readMetrics(join(dir, 'straight/metrics.jsonl')).filter((r) => 'loss' in r);
    const runDir = join(dir, 'resumed');
    await run(configPath, runDir, [...fixedTmax, 'max_duration=3ba']);
    const { result } = await run(configPath, runDir, fixedTmax, true);
    expect(result.resumedFrom).toBe('ba00000003');
    expect(result.steps).toBe(3);
    const resumed = readMetrics(join(runDir, 'metrics.jsonl')).filter((r) => 'loss' in r);
    expect(resumed.map((r) => r['step'])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(resumed.map((r) => [r['loss'], r['grad_norm'], r['lr']])).toEqual(
      straight.map((r) => [r['loss'], r['grad_norm'], r['lr']]),
    );

    // load_path starts a new run from that checkpoint: steps 4..6 again, same losses.
    const fromLoadPath = join(dir, 'load-path');
    await run(configPath, fromLoadPath, [
      ...fixedTmax,
      `load_path=${join(runDir, 'checkpoints/ba00000003')}`,
    ]);
    const continued = readMetrics(join(fromLoadPath, 'metrics.jsonl')).filter((r) => 'loss' in r);
    expect(continued.map((r) => [r['step'], r['loss']])).toEqual(
      straight.slice(3).map((r) => [r['step'], r['loss']]),
    );
  });

  it('writes checkpoints to save_folder ({run_name} expanded), resumes from there, and honours progress_bar', async () => {
    const runDir = join(dir, 'save-folder-run');
    const saveFolder = join(dir, 'elsewhere/{run_name}/checkpoints');
    const terminal: string[] = [];
    await run(
      configPath,
      runDir,
      [...fixedTmax, 'max_duration=3ba', `save_folder=${saveFolder}`, 'progress_bar=false'],
      false,
      terminal,
    );
    expect(terminal).toEqual([]); // progress_bar: false keeps plain lines even with a terminal
    expect(existsSync(join(runDir, 'checkpoints'))).toBe(false);
    expect(readdirSync(join(dir, 'elsewhere/tiny/checkpoints')).sort()).toEqual(['ba00000003', 'latest']);
    const { result } = await run(
      configPath,
      runDir,
      [...fixedTmax, `save_folder=${saveFolder}`],
      true,
      terminal,
    );
    expect(result.resumedFrom).toBe('ba00000003');
    expect(terminal.some((t) => t.includes('6/6'))).toBe(true); // unset: the live bar draws
  });

  it("fine-tunes from an exported directory: eval_first reproduces the source run's final eval", async () => {
    const source = readMetrics(join(dir, 'straight/metrics.jsonl')).filter((r) => 'eval_loss' in r);
    const runDir = join(dir, 'finetune');
    const { result } = await run(configPath, runDir, [
      `model={name: mpt_causal_lm, pretrained_model_name_or_path: ${join(dir, 'straight/export')}}`,
      'eval_first=true',
      'max_duration=1ba',
    ]);
    expect(result.steps).toBe(1);
    const evals = readMetrics(join(runDir, 'metrics.jsonl')).filter((r) => 'eval_loss' in r);
    expect(evals[0]!['step']).toBe(0);
    expect(evals[0]!['eval_loss']).toBe(source.at(-1)!['eval_loss']);
    await expect(
      run(configPath, join(dir, 'hub'), [
        'model={name: mpt_causal_lm, pretrained_model_name_or_path: mosaicml/mpt-1b-redpajama-200b}',
      ]),
    ).rejects.toThrow(
      'model.pretrained_model_name_or_path "mosaicml/mpt-1b-redpajama-200b" is not a local directory',
    );
  });
});

describe('explainHeapExhaustion', () => {
  it('names the microbatch for a wasm abort or a too-large heap view, and passes anything else through', () => {
    const abort = new WebAssembly.RuntimeError('Aborted()');
    const view = new RangeError('Invalid typed array length: 536870912');
    for (const err of [abort, view]) {
      const out = explainHeapExhaustion(err, 'wasm', 4, 32, 50432) as Error;
      expect(out.message).toMatch(
        /ran out of its 4 GiB heap in a microbatch of 4 x 32 tokens \(the logits alone are 26 MB/,
      );
      expect(out.cause).toBe(err);
    }
    const other = new RangeError('bad shape');
    expect(explainHeapExhaustion(other, 'wasm', 4, 32, 50432)).toBe(other);
    expect(explainHeapExhaustion(view, 'cpu', 4, 32, 50432)).toBe(view);
  });
});
