// Test-only helpers for the fused-kernel tests: seeded data, backend switching, shader error checks.
import { selectBackend } from '@mptjs/alibi-attention';
import * as tf from '@tensorflow/tfjs-core';
import { SeededRandom } from '../random.js';

export const webgpuExpected = process.env['CI'] === 'true' || Boolean(process.env['VK_ICD_FILENAMES']);

export function normal(length: number, seed: number, std = 1): Float32Array {
  return new SeededRandom(seed).fillNormal(new Float32Array(length), std);
}

/** Activates `backend` and runs `fn`, returning plain arrays so nothing outlives the backend switch. */
export async function on<T>(backend: 'cpu' | 'webgpu', fn: () => Promise<T>): Promise<T> {
  await selectBackend(backend, { log: false });
  return fn();
}

interface ErrorScopes {
  pushErrorScope(filter: 'validation'): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/**
 * Runs `fn` on webgpu inside a validation error scope: a shader that fails to compile does not throw in tfjs,
 * Dawn reports it to the scope, so this throws with its message.
 */
export async function withShaderChecks<T>(fn: () => Promise<T>): Promise<T> {
  const device = (tf.backend() as unknown as { device: ErrorScopes }).device;
  device.pushErrorScope('validation');
  const out = await fn();
  const error = await device.popErrorScope();
  if (error) throw new Error(`WebGPU validation error: ${error.message}`);
  return out;
}
