// What the webgpu backend dispatched while a test's code ran.
import * as tf from '@tensorflow/tfjs-core';

type RunProgram = (program: { shaderKey?: string }, ...rest: unknown[]) => unknown;

/**
 * Runs `fn` on the active (webgpu) backend and returns its value with the shader key of every program the
 * backend ran meanwhile (one dispatch each), in order. The backend is restored even if `fn` throws.
 */
export function withWebGpuPrograms<T>(fn: () => T): { value: T; keys: string[] } {
  const backend = tf.backend() as unknown as { runWebGPUProgram: RunProgram };
  const original = backend.runWebGPUProgram;
  const keys: string[] = [];
  backend.runWebGPUProgram = function (this: unknown, program, ...rest) {
    keys.push(program.shaderKey ?? '');
    return original.call(this, program, ...rest);
  };
  try {
    return { value: fn(), keys };
  } finally {
    backend.runWebGPUProgram = original;
  }
}
