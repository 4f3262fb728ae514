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
  uniforms: string;
  getUserCode(): string;
}

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
