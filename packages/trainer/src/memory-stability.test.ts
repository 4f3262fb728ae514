// Training must not leak tensors: the tensor count and bytes after every step (forward, backward, clipping, AdamW,
// schedule, metrics, periodic eval and checkpoints) stay what they were once the first steps have allocated the
// optimizer state, and the run releases everything it made. 1,000 steps on wasm; on webgpu (CI: SwiftShader, a
// CPU emulation at under 1 GFLOP/s) a short run checks the same, and the GPU kit repeats it at length on hardware.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@mptjs/kernels';
import { webgpuExpected, writeTinyRun } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadTrainConfig } from './config/load.js';
import { train } from './trainer.js';

const STEPS = { wasm: 1000, webgpu: 16 } as const;

async function memoryPerStep(backend: 'wasm' | 'webgpu', steps: number): Promise<tf.MemoryInfo[]> {
  const dir = mkdtempSync(join(tmpdir(), `mptjs-leak-${backend}-`));
  const every = Math.max(2, Math.floor(steps / 4));
  const configPath = writeTinyRun(dir, { maxDuration: `${steps}ba`, saveInterval: `${every}ba` });
  // A smaller model than the tiny run's default keeps the steps quick; eval and checkpoints still happen.
  const { config } = loadTrainConfig(configPath, [
    'model.d_model=16',
    'model.n_heads=2',
    'model.n_layers=1',
    'variables.max_seq_len=16',
    `eval_interval=${every}ba`,
    'eval_subset_num_batches=1',
  ]);
  const perStep: tf.MemoryInfo[] = [];
  await train({
    config,
    runDir: join(dir, 'run'),
    backend,
    log: (line) => {
      if (line.startsWith('[batch=')) perStep.push(tf.memory());
    },
  });
  return perStep;
}

describe.each(
  webgpuExpected ? (['wasm', 'webgpu'] as const) : (['wasm'] as const),
)('tensor memory over a training run (%s)', (backend) => {
  const steps = STEPS[backend];
  it(`stays flat over ${steps} steps and returns to where it started`, async () => {
    await selectBackend(backend, { log: false });
    const before = tf.memory().numTensors;
    const perStep = await memoryPerStep(backend, steps);
    expect(perStep.length).toBe(steps);
    const settled = perStep[3]!;
    for (const i of [Math.floor(steps / 2), steps - 1]) {
      expect(perStep[i]!.numTensors, `tensors after step ${i + 1}`).toBe(settled.numTensors);
      expect(perStep[i]!.numBytes, `bytes after step ${i + 1}`).toBe(settled.numBytes);
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 900_000);
});
