// A Linear's weight gradient x^T dy on wasm, at the trainer bench model's shapes (d_model 256, MLP 1024) and a
// rank's rows (batch x seq): the wrapper's order, which runs (dy^T x)^T when dy is wider than x so that XNNPACK
// packs x, against the same-run baseline x^T materialized then multiplied by dy (XNNPACK packs dy). Fresh
// operands every call, as in training, so no product finds its packed operand cached.
// Usage: node bench/trainer/weight-grad.bench.mjs [--rows 1024,2048] [--repeats 9]
import { parseArgs } from 'node:util';
import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { report } from '../lib.mjs';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1024,2048' },
    repeats: { type: 'string', default: '9' },
  },
});
const repeats = Number(values.repeats);
await selectBackend('wasm', { log: false });

/** Median ms of `product(x, dy)` over fresh copies of the operands, alternating with `other` each round. */
function medians(shapeX, shapeDy, products) {
  const x0 = tf.randomNormal(shapeX, 0, 1, 'float32', 1);
  const dy0 = tf.randomNormal(shapeDy, 0, 1, 'float32', 2);
  const times = products.map(() => []);
  for (let r = 0; r < repeats + 1; r++) {
    products.forEach((product, i) => {
      // New buffers (a clone would share them, and XNNPACK would find dy packed already).
      const [x, dy] = [tf.add(x0, 0), tf.add(dy0, 0)];
      const t0 = performance.now();
      tf.tidy(() => {
        product(x, dy).dataSync();
      });
      if (r > 0) times[i].push(performance.now() - t0);
      tf.dispose([x, dy]);
    });
  }
  tf.dispose([x0, dy0]);
  return times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]);
}

const layers = [
  ['qkv', 256, 768],
  ['attn out', 256, 256],
  ['mlp up', 256, 1024],
  ['mlp down', 1024, 256],
];
const rows = [];
for (const m of values.rows.split(',').map(Number)) {
  let base = 0;
  let ours = 0;
  for (const [name, inF, outF] of layers) {
    const [materialized, wrapper] = medians(
      [m, inF],
      [m, outF],
      [(x, dy) => tf.matMul(tf.transpose(x), dy), (x, dy) => tf.matMul(x, dy, true, false)],
    );
    base += materialized;
    ours += wrapper;
    rows.push({
      name: `${m} rows, ${name} ${inF}x${outF}: x^T then x^T dy`,
      value: materialized,
      unit: 'ms',
    });
    rows.push({ name: `${m} rows, ${name} ${inF}x${outF}: matMul(x, dy, true)`, value: wrapper, unit: 'ms' });
    console.log(`${m} rows ${name}: ${materialized.toFixed(2)} -> ${wrapper.toFixed(2)} ms`);
  }
  rows.push({
    name: `${m} rows, one block's weight gradients: baseline / ours`,
    value: base / ours,
    unit: 'x',
  });
}
report('trainer-weight-grad', { rows, notes: { repeats } });
