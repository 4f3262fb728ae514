import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { f16GemmActive, selectBackend } from '@mptjs/kernels';
import { webgpuExpected, writeTinyRun } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTrainConfig } from '../config/load.js';
import { readMetrics } from '../metrics/metrics-log.js';
import { gradSumOfSquares, unscaleAndClip } from '../optim/clip.js';
import { train } from '../trainer.js';
import { DynamicLossScaler } from './loss-scaler.js';

type Step = { step: number; loss: number; grad_norm: number; loss_scale?: number; skipped?: boolean };

async function run(
  backend: 'wasm' | 'webgpu',
  precision: string,
  extra: Partial<Parameters<typeof train>[0]> = {},
  overrides: string[] = [],
) {
  const dir = mkdtempSync(join(tmpdir(), `mptjs-precision-${precision}-`));
  const configPath = writeTinyRun(dir, { maxDuration: '6ba', saveInterval: '3ba' });
  // d_model 64: every product of the step is big enough for the f16 GEMM.
  const { config } = loadTrainConfig(configPath, [
    `precision=${precision}`,
    'model.d_model=64',
    ...overrides,
  ]);
  const lines: string[] = [];
  const result = await train({
    config,
    runDir: join(dir, 'run'),
    backend,
    log: (l) => lines.push(l),
    ...extra,
  });
  const steps = readMetrics(join(dir, 'run', 'metrics.jsonl')).filter((r) => 'loss' in r) as Step[];
  return { result, steps, lines, dir };
}

describe('dynamic loss scaling (torch GradScaler rule)', () => {
  it('backs off on overflow, grows after a run of good steps, and round-trips its state', () => {
    const s = new DynamicLossScaler({ initScale: 1024, growthInterval: 3 });
    expect(s.update(true)).toBe(true);
    expect(s.update(false)).toBe(false);
    expect(s.scale).toBe(512);
    for (let i = 0; i < 3; i++) expect(s.update(true)).toBe(true);
    expect(s.scale).toBe(1024);
    expect(s.state()).toEqual({ scale: 1024, goodSteps: 0 });
    const t = new DynamicLossScaler();
    expect(t.scale).toBe(65536);
    t.load({ scale: 8, goodSteps: 2 });
    expect(t.state()).toEqual({ scale: 8, goodSteps: 2 });
    expect(() => t.load({ scale: Number.NaN, goodSteps: 0 })).toThrow(/invalid/);
    expect(() => new DynamicLossScaler({ backoffFactor: 1 })).toThrow(/backoff factor/);
    expect(() => new DynamicLossScaler({ initScale: 0 })).toThrow(/positive finite/);
  });

  it('unscales and clips in one multiply, on the unscaled norm', async () => {
    await selectBackend('cpu', { log: false });
    const g = tf.tensor1d([300, 400]); // norm 500 at scale 100: unscaled norm 5
    const [clipped] = unscaleAndClip([g], 100, 5, 1);
    expect(Array.from(await clipped!.data()).map((v) => Number(v.toFixed(5)))).toEqual([0.6, 0.8]);
    const [unscaled] = unscaleAndClip([g], 100, 5, undefined);
    expect(Array.from(await unscaled!.data())).toEqual([3, 4]);
    expect(unscaleAndClip([g], 1, 5, 10)[0]).toBe(g);
    tf.dispose([g, clipped!, unscaled!]);
  });
});

describe('precision on wasm', () => {
  it('amp_fp16 says it trains in fp32 there, and trains exactly as fp32 does', async () => {
    const fp32 = await run('wasm', 'fp32');
    const amp = await run('wasm', 'amp_fp16');
    expect(fp32.lines).toContain('[mptjs] precision fp32');
    expect(amp.lines).toContain(
      '[mptjs] precision amp_fp16: f16 GEMMs run on webgpu only, not wasm; training in fp32',
    );
    expect(amp.steps.map((s) => s.loss)).toEqual(fp32.steps.map((s) => s.loss));
    expect(amp.steps[0]).not.toHaveProperty('loss_scale');
  }, 120_000);
});

describe.runIf(webgpuExpected)('amp_fp16 on webgpu (the scalar f16 engine: f16 rounding emulated)', () => {
  const previous = process.env['MPTJS_F16_GEMM_ENGINE'];
  process.env['MPTJS_F16_GEMM_ENGINE'] = 'scalar';
  afterAll(() => {
    if (previous === undefined) delete process.env['MPTJS_F16_GEMM_ENGINE'];
    else process.env['MPTJS_F16_GEMM_ENGINE'] = previous;
  });

  it('sums squares of matrices along their rows first on webgpu, to the float64 value', async () => {
    await selectBackend('webgpu', { log: false });
    const g = [tf.randomNormal([300, 70], 0, 1, 'float32', 1), tf.randomNormal([70], 0, 1, 'float32', 2)];
    let want = 0;
    for (const t of g) for (const v of await t.data()) want += v * v;
    expect(Math.abs((await gradSumOfSquares(g)) - want) / want).toBeLessThan(1e-6);
    tf.dispose(g);
  }, 60_000);

  it('learns as fp32 does: final losses within 1%, with the loss scale recorded and checkpointed', async () => {
    const fp32 = await run('webgpu', 'fp32');
    const amp = await run('webgpu', 'amp_fp16');
    expect(amp.lines.find((l) => l.startsWith('[mptjs] precision'))).toMatch(
      /^\[mptjs\] precision amp_fp16: f16 GEMMs \(scalar engine, .*\), dynamic loss scaling$/,
    );
    // Attention's products run in f16 too (the fused kernel's scalar engine), checked at startup.
    expect(amp.lines).toContain(
      '[mptjs] f16 flash attention: scalar engine, 16x16x16 f16, direct/b-row, forward and backward',
    );
    expect(fp32.lines.some((l) => l.includes('f16 flash attention'))).toBe(false);
    expect(amp.steps).toHaveLength(6);
    expect(amp.steps.every((s) => s.loss_scale === 65536 && !s.skipped)).toBe(true);
    const a = amp.steps.at(-1)!.loss;
    const b = fp32.steps.at(-1)!.loss;
    expect(Math.abs(a - b) / b).toBeLessThan(0.01);
    // The f16 rounding is real: the runs are close, not identical.
    expect(amp.steps.map((s) => s.loss)).not.toEqual(fp32.steps.map((s) => s.loss));
    expect(f16GemmActive()).toBe(false);
    const ckpts = join(amp.dir, 'run', 'checkpoints');
    const last = readdirSync(ckpts)
      .filter((n) => n.startsWith('ba'))
      .sort()
      .at(-1)!;
    const statePath = join(ckpts, last, 'state.json');
    expect(existsSync(statePath)).toBe(true);
    expect(JSON.parse(readFileSync(statePath, 'utf8')).lossScaler).toEqual({ scale: 65536, goodSteps: 6 });
    // The f16 flash attention's startup self-check compiles a dozen shaders, about a minute on SwiftShader.
  }, 900_000);

  it('skips a step whose gradients overflow f16, backs off, and goes on learning', async () => {
    const amp = await run('webgpu', 'amp_bf16', {
      lossScaler: { initScale: 2 ** 40, backoffFactor: 2 ** -24 },
    });
    expect(amp.lines.find((l) => l.startsWith('[mptjs] precision'))).toContain('WGSL has no bf16');
    expect(
      amp.lines.some((l) => /gradients overflowed f16 at loss scale 1099511627776; step skipped/.test(l)),
    ).toBe(true);
    expect(amp.steps[0]).toMatchObject({ loss_scale: 2 ** 40, skipped: true });
    expect(amp.steps[1]).toMatchObject({ loss_scale: 2 ** 16 });
    expect(amp.steps[1]!.skipped).toBeUndefined();
    expect(amp.steps.every((s) => Number.isFinite(s.loss))).toBe(true);
    expect(amp.steps.at(-1)!.loss).toBeLessThan(amp.steps[0]!.loss);
  }, 600_000);
});
