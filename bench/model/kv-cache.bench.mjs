// A wasm decode step at a long context with the KV cache written in place (what `MPTModel.newCache()` gives on
// wasm) against the concatenating cache (which copies every layer's whole cache each step), in the same process:
// both caches are filled by the same prefill, then their decode steps alternate so load on the machine hits both.
// Usage: node bench/model/kv-cache.bench.mjs [--shape 51m|203m] [--contexts 256,1536] [--steps 12]
import { parseArgs } from 'node:util';
import { selectBackend } from '@mptjs/kernels';
import { KVCache, MPTModel, parseMptConfig } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { report } from '../lib.mjs';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: '51m' },
    contexts: { type: 'string', default: '256,1536' },
    steps: { type: 'string', default: '12' },
  },
});
const SHAPES = {
  '203m': { d_model: 1024, n_layers: 12, n_heads: 16 },
  '51m': { d_model: 512, n_layers: 8, n_heads: 8 },
};
const shape = SHAPES[values.shape];
if (!shape) throw new Error(`unknown shape "${values.shape}" (known: ${Object.keys(SHAPES).join(', ')})`);
const contexts = values.contexts.split(',').map(Number);
const steps = Number(values.steps);

await selectBackend('wasm', { log: false });
const config = parseMptConfig({
  model_type: 'mpt',
  ...shape,
  expansion_ratio: 4,
  max_seq_len: 2048,
  vocab_size: 50432,
  no_bias: true,
  attn_config: { alibi: true, alibi_bias_max: 8 },
});
const model = MPTModel.init(config, 0);

/** Milliseconds of one decode step through `cache`. */
async function stepMs(cache, token) {
  const t0 = performance.now();
  const logits = model.decodeStep([token], cache);
  await logits.data();
  logits.dispose();
  return performance.now() - t0;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const context of contexts) {
  const prompt = Array.from({ length: context }, (_, i) => (i * 7919 + 11) % 50000);
  const inPlace = model.newCache();
  const concat = new KVCache(config.nLayers);
  for (const cache of [inPlace, concat]) model.prefill([prompt], cache).dispose();
  const times = { inPlace: [], concat: [] };
  // One untimed step each (kernel instantiation), then alternate.
  await stepMs(concat, 1);
  await stepMs(inPlace, 1);
  for (let i = 0; i < steps; i++) {
    times.concat.push(await stepMs(concat, 2 + i));
    times.inPlace.push(await stepMs(inPlace, 2 + i));
  }
  inPlace.dispose();
  concat.dispose();
  const c = median(times.concat);
  const p = median(times.inPlace);
  rows.push({ name: `context ${context}: concatenating cache`, value: c, unit: 'ms/step' });
  rows.push({ name: `context ${context}: in-place cache`, value: p, unit: 'ms/step' });
  rows.push({ name: `context ${context}: speed-up`, value: c / p, unit: 'x' });
}
model.dispose();
report('model-kv-cache', {
  rows,
  baseline: `context ${contexts[0]}: concatenating cache`,
  notes: {
    model: `${values.shape}: d_model ${config.dModel}, ${config.nLayers} layers, ${config.nHeads} heads, vocab ${config.vocabSize}`,
    run: `median of ${steps} alternating greedy decode steps per cache after one untimed step, batch 1`,
    tensors_left: String(tf.memory().numTensors),
  },
});
