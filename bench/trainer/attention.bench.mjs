// Plain-ops ALiBi attention forward + backward (tf.grads through attentionReference) on wasm, the attention part
// of a training step, with tfjs-wasm's own batched matmul as the same-run baseline.
// Usage: node bench/trainer/attention.bench.mjs [--batch 4] [--heads 4] [--seq 128] [--head-dim 64] [--profile]
import { parseArgs } from 'node:util';
import { alibiSlopes, attentionReference } from '@mptjs/alibi-attention';
import { selectBackend, setWasmSimdMatMul } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { report, timeit } from '../lib.mjs';
import { profileStep } from './profile.mjs';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '4' },
    heads: { type: 'string', default: '4' },
    seq: { type: 'string', default: '128' },
    'head-dim': { type: 'string', default: '64' },
    repeats: { type: 'string', default: '5' },
    profile: { type: 'boolean', default: false },
  },
});
const [b, h, t, dh, repeats] = [
  values.batch,
  values.heads,
  values.seq,
  values['head-dim'],
  values.repeats,
].map(Number);
await selectBackend('wasm', { log: false });
const shape = [b, h, t, dh];
const [q, k, v, dy] = [1, 2, 3, 4].map((seed) => tf.randomNormal(shape, 0, 1, 'float32', seed));
const slopes = alibiSlopes(h, 8, 'mpt');
const grad = tf.grads((x, y, z) => tf.mul(attentionReference(x, y, z, { slopes }), dy));

function step() {
  const gs = grad([q, k, v]);
  gs[0].dataSync();
  tf.dispose(gs);
}

if (values.profile) await profileStep(step);
const ours = await timeit(step, { repeats, warmup: 1 });
const previous = setWasmSimdMatMul('off');
const stock = await timeit(step, { repeats, warmup: 1 });
setWasmSimdMatMul(previous);
// Forward 4*B*H*T^2*Dh, backward twice that (llm-foundry's 12*L*d*T^2 per sample counts both).
const flops = 3 * 4 * b * h * t * t * dh;
report('attention-step', {
  rows: [
    { name: 'attention fwd+bwd, tfjs-wasm batched matmul: time', value: stock.median_s, unit: 's' },
    { name: 'attention fwd+bwd, ours: time', value: ours.median_s, unit: 's' },
    {
      name: 'attention fwd+bwd, tfjs-wasm batched matmul: FLOP/s',
      value: flops / stock.median_s / 1e9,
      unit: 'GFLOP/s',
    },
    { name: 'attention fwd+bwd, ours: FLOP/s', value: flops / ours.median_s / 1e9, unit: 'GFLOP/s' },
  ],
  baseline: 'attention fwd+bwd, tfjs-wasm batched matmul: FLOP/s',
  notes: { shape: `q, k, v [${shape}], causal ALiBi, fp32` },
});
tf.dispose([q, k, v, dy]);
