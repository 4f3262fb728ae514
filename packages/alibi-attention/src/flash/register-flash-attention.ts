import type { WebGpuBackendLike } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { type AttentionLayout, MIN_WORKGROUP_STORAGE_BYTES } from './blocked-program.js';
import { f16FlashAttentionBackwardPrograms, f16FlashAttentionProgram } from './f16-flash-attention.js';
import {
  FlashAttentionDkDvProgram,
  FlashAttentionDqProgram,
  FlashAttentionRowStatsProgram,
} from './flash-attention-backward-program.js';
import { FlashAttentionProgram } from './flash-attention-program.js';

type Shape4 = [number, number, number, number];

export const FLASH_ATTENTION_KERNEL = 'MptFlashAttention';
/** The forward that also returns each row's log-sum-exp (flat: O, then the log-sum-exps). */
export const FLASH_ATTENTION_LSE_KERNEL = 'MptFlashAttentionLse';
/** The fused backward: outputs dQ `[B, H, Tq, Dh]` and dK, dV flat (dK then dV). */
export const FLASH_ATTENTION_GRAD_KERNEL = 'MptFlashAttentionGrad';

export interface FlashAttentionAttrs {
  scale: number;
  queryOffset: number;
  causal: boolean;
  /** How q, k, v, O and the gradients lie in memory (default `heads`: `[B, H, T, Dh]`; `rows`: `[B, T, H, Dh]`). */
  layout?: AttentionLayout;
}

/** The workgroup memory the device was opened with (tfjs asks for the adapter's maximum). */
function storageBytes(backend: WebGpuBackendLike): number {
  return backend.device?.limits?.maxComputeWorkgroupStorageSize ?? MIN_WORKGROUP_STORAGE_BYTES;
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function scoreUniforms(attrs: FlashAttentionAttrs): { type: string; data: number[] }[] {
  return [
    { type: 'float32', data: [attrs.scale] },
    { type: 'int32', data: [attrs.queryOffset] },
    { type: 'int32', data: [attrs.causal ? 1 : 0] },
  ];
}

function forwardWebGpu(args: KernelArgs, withLse: boolean): tf.TensorInfo {
  const { q, k, v, slopes, keyMask } = args.inputs as Record<string, tf.TensorInfo>;
  const backend = args.backend as WebGpuBackendLike;
  const attrs = args.attrs as unknown as FlashAttentionAttrs;
  const layout = attrs.layout ?? 'heads';
  // Under mixed precision (the f16 GEMM on, the f16 kernel checked on this device) the products run in f16.
  const program =
    f16FlashAttentionProgram(backend, q!.shape, withLse, layout) ??
    new FlashAttentionProgram(q!.shape, withLse, storageBytes(backend), layout);
  return backend.runWebGPUProgram(program, [q!, k!, v!, slopes!, keyMask!], 'float32', scoreUniforms(attrs));
}

function gradWebGpu(args: KernelArgs): tf.TensorInfo[] {
  const { q, k, v, forward, dy, slopes, keyMask } = args.inputs as Record<string, tf.TensorInfo>;
  const backend = args.backend as WebGpuBackendLike;
  const attrs = args.attrs as unknown as FlashAttentionAttrs;
  const layout = attrs.layout ?? 'heads';
  const uniforms = scoreUniforms(attrs);
  const stats = backend.runWebGPUProgram(
    new FlashAttentionRowStatsProgram(dy!.shape, layout),
    [forward!, dy!],
    'float32',
  );
  const inputs = [q!, k!, v!, dy!, stats, slopes!, keyMask!];
  const bytes = storageBytes(backend);
  // Under mixed precision (the f16 GEMM on, the f16 backward checked on this device) the products run in f16.
  const f16 = f16FlashAttentionBackwardPrograms(backend, q!.shape, k!.shape, layout);
  const dq = backend.runWebGPUProgram(
    f16?.dq ?? new FlashAttentionDqProgram(q!.shape, bytes, layout),
    inputs,
    'float32',
    uniforms,
  );
  const dkdv = backend.runWebGPUProgram(
    f16?.dkdv ?? new FlashAttentionDkDvProgram(k!.shape, bytes, layout),
    inputs,
    'float32',
    uniforms,
  );
  backend.disposeData(stats.dataId);
  return [dq, dkdv];
}

const KERNELS: [string, (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]][] = [
  [FLASH_ATTENTION_KERNEL, (args) => forwardWebGpu(args, false)],
  [FLASH_ATTENTION_LSE_KERNEL, (args) => forwardWebGpu(args, true)],
  [FLASH_ATTENTION_GRAD_KERNEL, gradWebGpu],
];

/** Registers the fused kernels for the webgpu backend (idempotent; the backend itself may load later). */
export function registerFlashAttentionKernel(): void {
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (!tf.getKernel(kernelName, 'webgpu'))
      tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc });
  }
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
  return runKernel(FLASH_ATTENTION_KERNEL, { q, k, v, slopes, keyMask }, attrs) as tf.Tensor4D;
}

/** Runs one of this module's kernels on the active backend (registering them first). */
function runKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: FlashAttentionAttrs) {
  registerFlashAttentionKernel();
  return tf
    .engine()
    .runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap);
}

/**
 * The fused forward for training: O (shaped like q: `[B, H, Tq, Dh]`, or `[B, Tq, H, Dh]` with `layout: 'rows'`)
 * and `forward`, the kernel's flat output (O, then each row's
 * log-sum-exp), which `runFlashAttentionGradKernel` takes. No gradient is recorded.
 */
export function runFlashAttentionWithLse(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  slopes: tf.Tensor,
  keyMask: tf.Tensor,
  attrs: FlashAttentionAttrs,
): { o: tf.Tensor4D; forward: tf.Tensor1D } {
  const forward = runKernel(FLASH_ATTENTION_LSE_KERNEL, { q, k, v, slopes, keyMask }, attrs) as tf.Tensor1D;
  const o = tf.tidy(() => tf.reshape(tf.slice(forward, [0], [q.size]), q.shape as Shape4) as tf.Tensor4D);
  return { o, forward };
}

/**
 * The fused backward: `[dq, dk, dv]` for the output gradient `dy` (shaped like q, cast to float32 here),
 * given the forward's flat output from `runFlashAttentionWithLse` and the same slopes, key mask and attrs.
 */
export function runFlashAttentionGradKernel(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  forward: tf.Tensor,
  dy: tf.Tensor,
  slopes: tf.Tensor,
  keyMask: tf.Tensor,
  attrs: FlashAttentionAttrs,
): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  if (forward.size !== q.size + q.size / q.shape[3]!) {
    throw new RangeError(
      `the saved forward output has ${forward.size} floats; q [${q.shape}] needs O and one log-sum-exp per row`,
    );
  }
  if (dy.shape.join() !== q.shape.join()) {
    throw new RangeError(`dy [${dy.shape}] must have the shape of q [${q.shape}]`);
  }
  return tf.tidy(() => {
    const dyFloat = dy.dtype === 'float32' ? dy : tf.cast(dy, 'float32');
    const inputs = { q, k, v, forward, dy: dyFloat, slopes, keyMask };
    const [dq, dkdv] = runKernel(FLASH_ATTENTION_GRAD_KERNEL, inputs, attrs) as unknown as [
      tf.Tensor4D,
      tf.Tensor,
    ];
    const dk = tf.reshape(tf.slice(dkdv, [0], [k.size]), k.shape as Shape4) as tf.Tensor4D;
    const dv = tf.reshape(tf.slice(dkdv, [k.size], [k.size]), k.shape as Shape4) as tf.Tensor4D;
    return [dq, dk, dv] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  });
}
