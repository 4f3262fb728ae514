/**
 * Decoupled AdamW's per-tensor update on the webgpu backend in three dispatches (`webgpu-programs.ts`): both
 * moments in place, then the new parameter; the gradient's unscaling and clipping ride along in the moments. The tfjs-op update issues about thirteen dispatches per tensor, half
 * of a training step's dispatches, each costing host time in tfjs.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Uniform, WebGpuBackendLike } from '../../webgpu/program-like.js';
import type { AdamWStep } from './wasm.js';
import { AdamWMomentProgram, AdamWParamProgram } from './webgpu-programs.js';

/** One float32 uniform per struct member the program declares, in order. */
function scalars(...values: number[]): Uniform[] {
  return values.map((x) => ({ type: 'float32', data: [x] }));
}

/** Whether `adamwUpdateWebGpu` runs here: the active backend is webgpu. */
export function adamwWebGpuAvailable(): boolean {
  return tf.getBackend() === 'webgpu';
}

/**
 * Updates the moments `m` and `v` in place and returns the new parameter (a new tensor; the caller assigns it).
 * All four float32 and of one size (`grad` may have another shape of that size). `m` and `v` must own their
 * data (no other tensor may share it): optimizer slots made by `tf.variable` are. The gradient is multiplied by
 * `gradScale` (default 1) as the moments read it: the same arithmetic as multiplying it first, without that pass.
 */
export function adamwUpdateWebGpu(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  step: AdamWStep,
  gradScale = 1,
): tf.Tensor {
  for (const [name, t] of [
    ['grad', grad],
    ['m', m],
    ['v', v],
  ] as const) {
    if (t.dtype !== 'float32' || t.size !== param.size) {
      throw new RangeError(
        `adamw: ${name} must be float32 with ${param.size} elements, got ${t.dtype} [${t.shape}]`,
      );
    }
  }
  if (param.dtype !== 'float32')
    throw new RangeError(`adamw: the parameter must be float32, got ${param.dtype}`);
  if (!adamwWebGpuAvailable()) throw new Error('adamwUpdateWebGpu needs the webgpu backend');
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const shape = param.shape;
  backend.runWebGPUProgram(
    new AdamWMomentProgram(shape, 'first'),
    [grad],
    'float32',
    scalars(step.beta1, 1 - step.beta1, gradScale),
    m,
  );
  backend.runWebGPUProgram(
    new AdamWMomentProgram(shape, 'second'),
    [grad],
    'float32',
    scalars(step.beta2, 1 - step.beta2, gradScale),
    v,
  );
  const out = backend.runWebGPUProgram(
    new AdamWParamProgram(shape),
    [param, m, v],
    'float32',
    scalars(step.sqrtBc2, step.eps, step.stepSize, step.decay),
  );
  return tf.engine().makeTensorFromTensorInfo(out);
}
