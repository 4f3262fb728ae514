// Baselines every other figure is compared with: tfjs matmul FLOP/s per backend and host memory bandwidth.
// Usage: node bench/baselines/matmul.bench.mjs [--backends wasm,cpu,webgpu] [--size 1024]
import { parseArgs } from 'node:util';
import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { report, timeit } from '../lib.mjs';
import { measureBandwidth } from './bandwidth.mjs';

const { values } = parseArgs({
  options: { backends: { type: 'string', default: 'wasm,cpu' }, size: { type: 'string', default: '1024' } },
});
const n = Number(values.size);
const rows = [];
const notes = {};

const bw = measureBandwidth();
rows.push({ name: 'host memory read bandwidth', value: bw.readGBs, unit: 'GB/s' });
rows.push({ name: 'host memory copy bandwidth', value: bw.copyGBs, unit: 'GB/s' });

for (const backend of values.backends.split(',')) {
  let info;
  try {
    info = await selectBackend(backend, { log: false });
  } catch (err) {
    notes[backend] = `unavailable: ${err.message}`;
    continue;
  }
  if (info.adapter) notes[`${backend} adapter`] = info.adapter.summary;
  // The cpu backend is ~30x slower: a smaller problem keeps the run short without changing its rate much.
  const size = backend === 'cpu' || info.adapter?.isSoftware ? Math.min(n, 256) : n;
  const a = tf.randomNormal([size, size]);
  const b = tf.randomNormal([size, size]);
  const t = await timeit(
    async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    },
    { repeats: 5, warmup: 2 },
  );
  tf.dispose([a, b]);
  if (backend === 'wasm') {
    // Decode is bandwidth-bound inside the wasm kernels, so the bound that matters is what a wasm reduction reads.
    const big = tf.ones([64 * 2 ** 20]);
    const s = await timeit(() => tf.tidy(() => tf.sum(big)).dataSync(), { repeats: 5, warmup: 1 });
    rows.push({ name: 'wasm sum read bandwidth', value: (big.size * 4) / s.median_s / 1e9, unit: 'GB/s' });
    big.dispose();
  }
  rows.push({
    name: `matmul ${size}^3 ${backend}`,
    value: (2 * size ** 3) / t.median_s / 1e9,
    unit: 'GFLOP/s',
  });
}
report('baselines', { rows, baseline: `matmul ${n}^3 wasm`, notes });
