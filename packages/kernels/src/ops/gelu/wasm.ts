/**
 * The exact GELU `x Phi(x)` and its gradient on tfjs-wasm tensors, one SIMD pass each (`gelu.wat`), in place of
 * the five tfjs ops of the forward pass and the eight of their gradient, each a pass over the activations.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addressOf, kernelsFor, type WasmBackendLike } from '../../wasm/load.js';
import { registerWasmKernels, wasmModuleRuns } from '../../wasm/register.js';

/** `x` -> `x Phi(x)` (float32, any shape). */
export const GELU_ERF_KERNEL = 'GeluErfSimd';
/** `x`, `dy` -> `dy (Phi(x) + x phi(x))`. */
export const GELU_ERF_GRAD_KERNEL = 'GeluErfGradSimd';

interface GeluExports {
  gelu(x: number, y: number, n: number): void;
  gelu_grad(x: number, dy: number, dx: number, n: number): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown };

function exportsFor(backend: WasmBackendLike): GeluExports {
  const kernels = kernelsFor<GeluExports>(backend, 'gelu');
  if (!kernels) throw new Error('the GELU kernels need WebAssembly SIMD and a reachable wasm memory');
  return kernels;
}

function checkFloat(name: string, t: tf.TensorInfo, shape: number[]): void {
  if (t.dtype !== 'float32' || t.shape.join() !== shape.join()) {
    throw new RangeError(`${name} must be float32 [${shape}], got ${t.dtype} [${t.shape}]`);
  }
}

function gelu(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const backend = args.backend as WasmBackendLike;
  checkFloat('x', x, x.shape);
  const kernels = exportsFor(backend);
  const out = backend.makeOutput(x.shape, 'float32');
  const size = x.shape.reduce((p, d) => p * d, 1);
  // Addresses after the allocation: allocating may grow the memory.
  kernels.gelu(addressOf(backend, x.dataId), addressOf(backend, out.dataId), size);
  return out as tf.TensorInfo;
}

function geluGrad(args: KernelArgs): tf.TensorInfo {
  const { x, dy } = args.inputs as Record<'x' | 'dy', tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  checkFloat('x', x, x.shape);
  checkFloat('dy', dy, x.shape);
  const kernels = exportsFor(backend);
  const out = backend.makeOutput(x.shape, 'float32');
  const size = x.shape.reduce((p, d) => p * d, 1);
  const at = (t: { dataId: object }) => addressOf(backend, t.dataId);
  kernels.gelu_grad(at(x), at(dy), at(out), size);
  return out as tf.TensorInfo;
}

/** Registers both kernels for the wasm backend (idempotent). */
export function registerGeluKernels(): void {
  registerWasmKernels({ [GELU_ERF_KERNEL]: gelu, [GELU_ERF_GRAD_KERNEL]: geluGrad });
}

/** Whether `geluErfSimd` runs here: wasm with SIMD and a reachable memory, our wasm kernels not switched off. */
export function geluKernelsAvailable(): boolean {
  if (!wasmModuleRuns('gelu')) return false;
  registerGeluKernels();
  return true;
}

/**
 * The exact GELU of a float32 tensor with its gradient, on our kernels (needs `geluKernelsAvailable()`). The
 * backward pass keeps only `x`.
 */
export function geluErfSimd(x: tf.Tensor): tf.Tensor {
  // Outside tf.grads/variableGrads nothing is taped: skip the custom-gradient scope (one per block in decode).
  if (tf.engine().state.gradientDepth === 0)
    return tf.engine().runKernel(GELU_ERF_KERNEL, { x }) as tf.Tensor;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([input]);
    return {
      value: tf.engine().runKernel(GELU_ERF_KERNEL, { x: input }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [
        tf.engine().runKernel(GELU_ERF_GRAD_KERNEL, { x: saved[0]!, dy: dy as tf.Tensor }) as tf.Tensor,
      ],
    };
  });
  return op(x);
}
