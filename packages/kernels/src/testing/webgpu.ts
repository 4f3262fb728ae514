// Test-only helpers for the fused-kernel tests: seeded data, backend switching, shader error checks.
// (Whether WebGPU tests must run is @mptjs/test-fixtures' webgpuExpected.)
import * as tf from '@tensorflow/tfjs-core';
// The package entry, so the tests run with what importing the package installs (gradients, wasm patches).
import { selectBackend } from '../index.js';

/**
 * Seeded normal(0, std) samples: Box-Muller over a SplitMix32-style counter, the same numbers as
 * `SeededRandom.fillNormal` of @mptjs/mpt-model for the same seed (these tests' data predates the move).
 */
export function normal(length: number, seed: number, std = 1): Float32Array {
  let state = Math.trunc(seed) >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const next = (): number => ((nextUint32() >>> 5) * 67108864 + (nextUint32() >>> 6)) / 9007199254740992;
  const out = new Float32Array(length);
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - next();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    const theta = 2 * Math.PI * next();
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
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
