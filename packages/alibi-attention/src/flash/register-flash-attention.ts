import * as tf from '@tensorflow/tfjs-core';
import { FlashAttentionProgram } from './flash-attention-program.js';

export const FLASH_ATTENTION_KERNEL = 'MptFlashAttention';

export interface FlashAttentionAttrs {
  scale: number;
  queryOffset: number;
  causal: boolean;
}

interface WebGpuBackendLike {
  runWebGPUProgram(
    program: FlashAttentionProgram,
    inputs: tf.TensorInfo[],
    dtype: tf.DataType,
    uniforms: { type: string; data: number[] }[],
  ): tf.TensorInfo;
}

function flashAttentionWebGpu(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { q, k, v, slopes, keyMask } = args.inputs as Record<string, tf.TensorInfo>;
  const attrs = args.attrs as unknown as FlashAttentionAttrs;
  const program = new FlashAttentionProgram(q!.shape);
  return (args.backend as WebGpuBackendLike).runWebGPUProgram(
    program,
    [q!, k!, v!, slopes!, keyMask!],
    'float32',
    [
      { type: 'float32', data: [attrs.scale] },
      { type: 'int32', data: [attrs.queryOffset] },
      { type: 'int32', data: [attrs.causal ? 1 : 0] },
    ],
  );
}

let registered = false;

/** Registers the fused kernel for the webgpu backend (idempotent; the backend itself may load later). */
export function registerFlashAttentionKernel(): void {
  if (registered || tf.getKernel(FLASH_ATTENTION_KERNEL, 'webgpu')) return;
  tf.registerKernel({
    kernelName: FLASH_ATTENTION_KERNEL,
    backendName: 'webgpu',
    kernelFunc: flashAttentionWebGpu,
  });
  registered = true;
}

/** Runs the registered fused kernel on the active backend (which must be webgpu). No gradient is recorded. */
export function runFlashAttentionKernel(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  slopes: tf.Tensor,
  keyMask: tf.Tensor,
  attrs: FlashAttentionAttrs,
): tf.Tensor4D {
  registerFlashAttentionKernel();
  return tf
    .engine()
    .runKernel(
      FLASH_ATTENTION_KERNEL,
      { q, k, v, slopes, keyMask } as unknown as tf.NamedTensorMap,
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor4D;
}
