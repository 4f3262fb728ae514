// Where a training step's GPU time goes: one step of the mpt-125m shape under tf.profile, which times every kernel
// on the GPU (tfjs-backend-webgpu uses timestamp queries when the device has them), summed by kernel name and by
// kernel name and input shapes. Profiling submits each kernel on its own, so the profiled step's wall time is
// not the training speed; the kernel times are.
import { MPTModel } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { createTrainer, modelConfig } from './model-stage.mjs';
import { withGpuErrors } from './timing.mjs';

function msOf(kernel) {
  return typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
}

export function summarize(kernels, keyOf, limit) {
  const groups = new Map();
  for (const k of kernels) {
    const key = keyOf(k);
    const g = groups.get(key) ?? { kernel: key, calls: 0, ms: 0 };
    g.calls += 1;
    g.ms += msOf(k);
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.ms - a.ms).slice(0, limit);
}

export async function profileTrainStep(shape) {
  const model = MPTModel.init(modelConfig(shape, shape.nLayers), 1);
  const trainer = createTrainer(model, shape);
  try {
    // The first step compiles every shader; the profiled one then times kernels, not compiles.
    await withGpuErrors(() => trainer.step());
    const t0 = performance.now();
    const info = await withGpuErrors(() => tf.profile(() => trainer.step()));
    const wallS = (performance.now() - t0) / 1000;
    const kernels = info.kernels;
    const timed = kernels.filter((k) => typeof k.kernelTimeMs === 'number');
    const totalMs = timed.reduce((s, k) => s + k.kernelTimeMs, 0);
    const share = (g) => ({ ...g, share: totalMs > 0 ? g.ms / totalMs : 0 });
    return {
      shape: {
        name: shape.name,
        d_model: shape.dModel,
        n_layers: shape.nLayers,
        seq: shape.seq,
        batch: shape.batch,
      },
      kernel_calls: kernels.length,
      timed_calls: timed.length,
      gpu_kernel_ms_total: totalMs,
      profiled_step_wall_s: wallS,
      by_kernel: summarize(kernels, (k) => k.name, 20).map(share),
      by_kernel_and_shapes: summarize(kernels, (k) => `${k.name} ${JSON.stringify(k.inputShapes)}`, 20).map(
        share,
      ),
      note: 'one training step under tf.profile; kernels run on the CPU (WEBGPU_CPU_FORWARD) have no GPU time',
    };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
