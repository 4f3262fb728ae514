/**
 * The fused programs as tfjs kernels of the webgpu backend, so they run through the engine (tensor tracking,
 * tidy, disposal) like any op. Gradients are not registered here: the ops wrap these kernels in customGrad.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CrossEntropyForwardProgram, CrossEntropyGradProgram } from '../ops/cross-entropy/webgpu-programs.js';
import {
  GeluGradProgram,
  GeluProgram,
  type MatMulGeluOutput,
  MatMulGeluProgram,
  type WeightLayout,
} from '../ops/gelu/webgpu-programs.js';
import {
  LayerNormApplyProgram,
  LayerNormGradInputProgram,
  LayerNormGradParamsProgram,
  LayerNormStatsProgram,
} from '../ops/layer-norm/webgpu-programs.js';
import type { Uniform, WebGpuBackendLike, WebGpuProgramLike } from './program-like.js';

type Inputs = Record<string, tf.TensorInfo | undefined>;
type Attrs = Record<string, number | boolean | string>;

interface FusedKernel {
  /** Input names in the order the program binds them; a trailing optional one may be absent. */
  inputs: string[];
  build(inputs: tf.TensorInfo[], attrs: Attrs): { program: WebGpuProgramLike; uniforms?: Uniform[] };
}

function rowsAndWidth(x: tf.TensorInfo): [number, number] {
  return [x.shape[0]!, x.shape[1]!];
}

export const FUSED_KERNELS = {
  MptLayerNormStats: {
    inputs: ['x'],
    build: ([x], attrs) => ({
      program: new LayerNormStatsProgram(...rowsAndWidth(x!)),
      uniforms: [{ type: 'float32', data: [attrs['eps'] as number] }],
    }),
  },
  MptLayerNormApply: {
    inputs: ['x', 'stats', 'weight', 'bias'],
    build: (inputs) => ({
      program: new LayerNormApplyProgram(...rowsAndWidth(inputs[0]!), inputs.length === 4),
    }),
  },
  MptLayerNormGradInput: {
    inputs: ['x', 'dy', 'stats', 'weight'],
    build: ([x]) => ({ program: new LayerNormGradInputProgram(...rowsAndWidth(x!)) }),
  },
  MptLayerNormGradParams: {
    inputs: ['x', 'dy', 'stats'],
    build: ([x], attrs) => ({
      program: new LayerNormGradParamsProgram(...rowsAndWidth(x!), Boolean(attrs['hasBias'])),
    }),
  },
  MptCrossEntropyForward: {
    inputs: ['logits', 'targets'],
    build: ([logits], attrs) => ({
      program: new CrossEntropyForwardProgram(...rowsAndWidth(logits!)),
      uniforms: [{ type: 'int32', data: [attrs['ignoreIndex'] as number] }],
    }),
  },
  MptCrossEntropyGrad: {
    inputs: ['logits', 'targets', 'stats', 'scale'],
    build: ([logits], attrs) => ({
      program: new CrossEntropyGradProgram(...rowsAndWidth(logits!)),
      uniforms: [{ type: 'int32', data: [attrs['ignoreIndex'] as number] }],
    }),
  },
  MptMatMulGelu: {
    inputs: ['x', 'weight', 'bias'],
    build: (inputs, attrs) => {
      const [x, w, bias] = inputs as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo?];
      const layout = attrs['layout'] as WeightLayout;
      const outFeatures = w.shape[layout === 'inOut' ? 1 : 0]!;
      const output = attrs['output'] as MatMulGeluOutput;
      return { program: new MatMulGeluProgram(x.shape[0]!, outFeatures, layout, bias !== undefined, output) };
    },
  },
  MptGelu: { inputs: ['z'], build: ([z]) => ({ program: new GeluProgram(z!.shape) }) },
  MptGeluGrad: { inputs: ['z', 'dy'], build: ([z]) => ({ program: new GeluGradProgram(z!.shape) }) },
} satisfies Record<string, FusedKernel>;

export type FusedKernelName = keyof typeof FUSED_KERNELS;

let registered = false;

/** Registers every fused kernel for the webgpu backend (idempotent; the backend itself may load later). */
export function registerFusedKernels(): void {
  if (registered) return;
  for (const [name, kernel] of Object.entries(FUSED_KERNELS) as [string, FusedKernel][]) {
    if (tf.getKernel(name, 'webgpu')) continue;
    tf.registerKernel({
      kernelName: name,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const given = kernel.inputs
          .map((n) => (inputs as Inputs)[n])
          .filter((t): t is tf.TensorInfo => t !== undefined);
        const { program, uniforms } = kernel.build(given, (attrs ?? {}) as Attrs);
        return (backend as WebGpuBackendLike).runWebGPUProgram(program, given, 'float32', uniforms);
      },
    });
  }
  registered = true;
}

/** Whether the fused kernels can run: the active backend is webgpu. */
export function fusedKernelsAvailable(): boolean {
  return tf.getBackend() === 'webgpu';
}

/** Runs one fused kernel on the active (webgpu) backend. No gradient is recorded. */
export function runFusedKernel(
  name: FusedKernelName,
  inputs: Record<string, tf.Tensor | undefined>,
  attrs: Attrs = {},
): tf.Tensor {
  registerFusedKernels();
  const present = Object.fromEntries(Object.entries(inputs).filter(([, t]) => t !== undefined));
  return tf
    .engine()
    .runKernel(name, present as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
