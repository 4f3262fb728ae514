// Experimental: wraps the wasm backend's BatchMatMul so transposed operands are transposed explicitly first.
// tfjs-backend-wasm 4.22 takes a slow path for transposeA/transposeB (measured here: x @ W^T 10x, dy^T @ x 40x
// slower than transpose + plain matmul), and every Linear forward (`x @ W^T`) and weight gradient (`dy^T @ x`)
// uses those flags. Used by step.bench.mjs to measure what fixing it would give.
import * as tf from '@tensorflow/tfjs-core';

export function useExplicitTransposes() {
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  const swapLast = (info, backend) => {
    const r = info.shape.length;
    const perm = [...Array(r - 2).keys(), r - 1, r - 2];
    return transpose.kernelFunc({ inputs: { x: info }, backend, attrs: { perm } });
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc({ inputs, backend, attrs });
      const a = attrs.transposeA ? swapLast(inputs.a, backend) : inputs.a;
      const b = attrs.transposeB ? swapLast(inputs.b, backend) : inputs.b;
      const out = original.kernelFunc({
        inputs: { a, b },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
      return out;
    },
  });
}
