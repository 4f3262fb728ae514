/**
 * The part of the WebGPU API the recorded decode step calls, typed structurally (the package does not depend
 * on @webgpu/types), and the tfjs-backend-webgpu internals it reads: the device and a tensor's GPU buffer.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface GpuBuffer {
  readonly size: number;
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}

export interface GpuBindGroupLayout {
  readonly label?: string;
}
export type GpuBindGroup = object;
export type GpuPipeline = object;

export interface GpuComputePass {
  setPipeline(pipeline: GpuPipeline): void;
  setBindGroup(index: number, group: GpuBindGroup): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}

export interface GpuCommandEncoder {
  beginComputePass(descriptor?: object): GpuComputePass;
  copyBufferToBuffer(
    src: GpuBuffer,
    srcOffset: number,
    dst: GpuBuffer,
    dstOffset: number,
    size: number,
  ): void;
  finish(): object;
}

export interface GpuDevice {
  readonly limits: Record<string, number>;
  readonly queue: {
    submit(buffers: object[]): void;
    writeBuffer(buffer: GpuBuffer, offset: number, data: ArrayBufferView): void;
    onSubmittedWorkDone(): Promise<void>;
  };
  createBuffer(descriptor: { size: number; usage: number; label?: string }): GpuBuffer;
  createShaderModule(descriptor: { code: string; label?: string }): {
    getCompilationInfo?(): Promise<{
      messages: readonly { type: string; message: string; lineNum: number }[];
    }>;
  };
  createBindGroupLayout(descriptor: { entries: object[]; label?: string }): GpuBindGroupLayout;
  createPipelineLayout(descriptor: { bindGroupLayouts: GpuBindGroupLayout[] }): object;
  createComputePipeline(descriptor: object): GpuPipeline;
  createBindGroup(descriptor: {
    layout: GpuBindGroupLayout;
    entries: object[];
    label?: string;
  }): GpuBindGroup;
  createCommandEncoder(): GpuCommandEncoder;
  pushErrorScope(filter: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/** WebGPU's constants (fixed by the specification), so no global `GPUBufferUsage` is needed. */
export const BufferUsage = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;
export const MAP_MODE_READ = 0x1;
export const SHADER_STAGE_COMPUTE = 0x4;

interface TensorData {
  resource?: unknown;
}

/** What the recorded step reads of tfjs-backend-webgpu 4.22's backend object. */
export interface WebGpuBackendInternals {
  device: GpuDevice;
  tensorMap: { get(dataId: object): TensorData | undefined };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export class RecordedDecodeError extends Error {
  override name = 'RecordedDecodeError';
}

/** The active webgpu backend, or a clear error naming the backend in use. */
export function webGpuBackend(): WebGpuBackendInternals {
  const name = tf.getBackend();
  if (name !== 'webgpu') {
    throw new RecordedDecodeError(
      `the recorded decode step runs on the webgpu backend, but the active backend is "${name}": ` +
        "select it with selectBackend('webgpu') before loading the model",
    );
  }
  const backend = tf.backend() as unknown as Partial<WebGpuBackendInternals>;
  if (!backend.device || !backend.tensorMap || !backend.uploadToGPU || !backend.submitQueue) {
    throw new RecordedDecodeError('the webgpu backend does not expose its device and tensor buffers');
  }
  return backend as WebGpuBackendInternals;
}

/** The GPU buffer holding `tensor` (float32, or int32 words of int8 weights) on the webgpu backend (uploaded first if its values are still on the host). */
export function tensorBuffer(
  backend: WebGpuBackendInternals,
  tensor: tf.Tensor,
  dtype: 'float32' | 'int32' = 'float32',
): GpuBuffer {
  if (tensor.isDisposed) throw new RecordedDecodeError(`tensor ${tensor.id} is disposed`);
  if (tensor.dtype !== dtype) {
    throw new RecordedDecodeError(`expected a ${dtype} tensor, got ${tensor.dtype} [${tensor.shape}]`);
  }
  backend.uploadToGPU(tensor.dataId);
  const resource = backend.tensorMap.get(tensor.dataId)?.resource as GpuBuffer | undefined;
  if (!resource || typeof resource.mapAsync !== 'function') {
    throw new RecordedDecodeError(`tensor ${tensor.id} [${tensor.shape}] is not held in a GPU buffer`);
  }
  return resource;
}

/** Submits what tfjs has recorded but not yet submitted, so work submitted after it sees its results. */
export function flushTfjs(backend: WebGpuBackendInternals): void {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
}
