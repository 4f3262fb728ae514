/**
 * The parts of tfjs-backend-webgpu that mptjs's WGSL programs use: the program object tfjs compiles (it wraps
 * `getUserCode()` with the bindings, the uniforms struct and the entry point) and the backend that runs one.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** The subset of tfjs-backend-webgpu's `WebGPUProgram` these programs fill in. */
export interface WebGpuProgramLike {
  variableNames: string[];
  variableComponents?: number[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** The program's own uniforms as WGSL struct members (tfjs adds the shapes). */
  uniforms?: string;
  /** Whether tfjs passes the output size as a uniform. */
  size?: boolean;
  getUserCode(): string;
}

/** One uniform value a program run passes (its members, in the order `uniforms` declares them). */
export type Uniform = { type: 'float32' | 'int32'; data: number[] };

/** The subset of tfjs-backend-webgpu's backend the programs' kernels call. */
export interface WebGpuBackendLike {
  runWebGPUProgram(
    program: WebGpuProgramLike,
    inputs: tf.TensorInfo[],
    dtype: tf.DataType,
    uniforms?: { type: string; data: number[] }[],
    output?: tf.TensorInfo,
  ): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  device?: { limits?: { maxComputeWorkgroupStorageSize?: number } };
}
