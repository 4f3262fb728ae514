// GFLOP/s of the batched attention matmuls on wasm: tfjs-wasm's own BatchMatMul (scalar loop for batch > 1)
// against our SIMD kernel (packages/kernels/src/ops/matmul), and the 1024^3 XNNPACK matmul measured
// in the same process as the baseline. Also the batch-1 products of Linear layers (which path to keep) and the
// Transpose kernel (tfjs-wasm's vs ours).
// Usage: node bench/baselines/batched-matmul.bench.mjs [--bh 64] [--t 128] [--dh 64] [--repeats 5]
import { parseArgs } from 'node:util';
import { selectBackend, setWasmSimdMatMul } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { report, timeit } from '../lib.mjs';

const { values } = parseArgs({
  options: {
    bh: { type: 'string', default: '64' },
    t: { type: 'string', default: '128' },
    dh: { type: 'string', default: '64' },
    repeats: { type: 'string', default: '5' },
  },
});
const [bh, t, dh, repeats] = [values.bh, values.t, values.dh, values.repeats].map(Number);
await selectBackend('wasm', { log: false });

async function gflops(shapeA, shapeB, ta, tb, mode) {
  const a = tf.randomNormal(shapeA);
  const b = tf.randomNormal(shapeB);
  const previous = setWasmSimdMatMul(mode);
  try {
    const out = tf.matMul(a, b, ta, tb);
    const flops = 2 * out.size * (ta ? shapeA.at(-2) : shapeA.at(-1));
    out.dispose();
    const r = await timeit(
      () => {
        const c = tf.matMul(a, b, ta, tb);
        c.dataSync();
        c.dispose();
      },
      { repeats, warmup: 2 },
    );
    return flops / r.median_s / 1e9;
  } finally {
    setWasmSimdMatMul(previous);
    tf.dispose([a, b]);
  }
}

const rows = [
  {
    name: 'matmul 1024^3 (XNNPACK)',
    value: await gflops([1024, 1024], [1024, 1024], false, false, 'off'),
    unit: 'GFLOP/s',
  },
];
const cases = [
  ['scores q k^T (k pre-transposed)', [bh, t, dh], [bh, dh, t], false, false],
  ['scores q k^T (transposeB)', [bh, t, dh], [bh, t, dh], false, true],
  ['P v', [bh, t, t], [bh, t, dh], false, false],
  ['dV = P^T dO (transposeA)', [bh, t, t], [bh, t, dh], true, false],
];
for (const [label, sa, sb, ta, tb] of cases) {
  const shape = `[${sa}]x[${sb}]`;
  rows.push({
    name: `${label} ${shape}: tfjs-wasm`,
    value: await gflops(sa, sb, ta, tb, 'off'),
    unit: 'GFLOP/s',
  });
  rows.push({
    name: `${label} ${shape}: ours`,
    value: await gflops(sa, sb, ta, tb, 'batched'),
    unit: 'GFLOP/s',
  });
}
// Batch 1 (the Linear layers and their gradients in a training step, d_model 256, 512 tokens): XNNPACK with
// transposed operands copied by tfjs's Transpose (stock), by our SIMD transpose (default), or our kernel alone.
const linear = [
  ['W x^T', [1024, 256], [256, 512], false, false],
  ['W x^T (K 1024)', [256, 1024], [1024, 512], false, false],
  ['head W x^T', [8192, 256], [256, 512], false, false],
  ['W^T dY (transposeA)', [1024, 256], [1024, 512], true, false],
  ['dY x (transposeB)', [256, 512], [1024, 512], false, true],
  ['head gradient (transposeA, K 8192)', [8192, 256], [8192, 512], true, false],
];
for (const [label, sa, sb, ta, tb] of linear) {
  const shape = `[${sa}]${ta ? 'T' : ''}x[${sb}]${tb ? 'T' : ''}`;
  for (const [mode, how] of [
    ['off', 'tfjs Transpose + XNNPACK'],
    ['batched', 'our transpose + XNNPACK'],
    ['all', 'our kernel'],
  ]) {
    if (mode === 'batched' && !ta && !tb) continue;
    rows.push({
      name: `${label} ${shape}: ${how}`,
      value: await gflops(sa, sb, ta, tb, mode),
      unit: 'GFLOP/s',
    });
  }
}
// Transpose: tfjs-wasm's kernel against ours, as bytes read + written per second.
async function transposeGBs(shape, perm, mode) {
  const x = tf.randomNormal(shape);
  const previous = setWasmSimdMatMul(mode);
  try {
    const r = await timeit(
      () => {
        const y = tf.transpose(x, perm);
        y.dataSync();
        y.dispose();
      },
      { repeats, warmup: 2 },
    );
    return (2 * 4 * x.size) / r.median_s / 1e9;
  } finally {
    setWasmSimdMatMul(previous);
    x.dispose();
  }
}
for (const [shape, perm] of [
  [
    [8192, 512],
    [1, 0],
  ],
  [
    [16, 128, 4, 64],
    [0, 2, 1, 3],
  ],
]) {
  for (const [mode, how] of [
    ['off', 'tfjs-wasm'],
    ['batched', 'ours'],
  ]) {
    rows.push({
      name: `transpose [${shape}] perm [${perm}]: ${how}`,
      value: await transposeGBs(shape, perm, mode),
      unit: 'GB/s',
    });
  }
}
report('batched-matmul', {
  rows,
  baseline: 'matmul 1024^3 (XNNPACK)',
  notes: { shapes: `B*H ${bh}, T ${t}, Dh ${dh}; float32, single thread` },
});
