// mpt-1b-redpajama-200b decode and prefill speed on the wasm backend, with random weights.
// The wasm heap tops out at 4 GiB and the full model is 5.25 GB in fp32, so by default this runs a slice of the
// real shape (d_model 2048, 16 heads, vocab 50432, `--layers` of the 24 blocks) and extrapolates the 24-layer
// figures from the measured per-block and embedding/head times. The whole 24-layer model runs with weight offload
// in mpt-1b-full.bench.mjs.
// Usage: node bench/model/decode.bench.mjs [--layers 6] [--prompt 128] [--decode 16] [--backend wasm] [--layout inOut|outIn]
import { parseArgs } from 'node:util';
import { selectBackend } from '@mptjs/kernels';
import { MPTModel } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { measureBandwidth } from '../baselines/bandwidth.mjs';
import { matmulGflops } from '../baselines/matmul-rate.mjs';
import { report } from '../lib.mjs';
import { decodeBytesPerToken, prefillFlops as flopsOf, mpt1bConfig } from './mpt-1b-shape.mjs';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '6' },
    prompt: { type: 'string', default: '128' },
    decode: { type: 'string', default: '16' },
    backend: { type: 'string', default: 'wasm' },
    layout: { type: 'string', default: 'inOut' },
  },
});
const layers = Number(values.layers);
const promptLength = Number(values.prompt);
const decodeSteps = Number(values.decode);
const FULL_LAYERS = 24;

const mib = (bytes) => bytes / 2 ** 20;
let peakRss = 0;
let peakTensorBytes = 0;
const sampleMemory = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  peakTensorBytes = Math.max(peakTensorBytes, tf.memory().numBytes);
};

const bw = measureBandwidth();
await selectBackend(values.backend, { log: false });

// The hub config of mpt-1b-redpajama-200b, cut to `layers` blocks.
const config = mpt1bConfig(layers);
const d = config.dModel;
const vocab = config.vocabSize;

// Matmul baselines in this run (plain A @ B, tfjs-wasm's fastest form): a square 1024^3 and the prefill's FFN shape.
const mm1024 = await matmulGflops(1024, 1024, 1024);
const mmFfn = await matmulGflops(promptLength, d, 4 * d);

let t0 = performance.now();
const model = MPTModel.init(config, 0, { linearLayout: values.layout });
const initSeconds = (performance.now() - t0) / 1000;
sampleMemory();

// The same unit chain `decodeStep` runs, timed per unit (wasm ops run synchronously, so host time is op time).
const units = model.units();
function timedStep(ids, cache) {
  const times = { embed: 0, blocks: 0, head: 0 };
  const out = tf.tidy(() => {
    const ctx = { slopes: model.slopes, pastLength: cache.length, keyMask: null, cache };
    let x = tf.tensor2d(ids, [1, ids[0].length], 'int32');
    for (const unit of units) {
      const start = performance.now();
      if (unit.name === 'head') {
        const t = x.shape[1];
        x = tf.slice(x, [0, t - 1, 0], [1, 1, d]);
      }
      x = unit.forward(model.get, x, ctx);
      x.dataSync();
      const ms = performance.now() - start;
      if (unit.name === 'embed') times.embed += ms;
      else if (unit.name === 'head') times.head += ms;
      else times.blocks += ms;
    }
    return x;
  });
  sampleMemory();
  return { logits: out, times };
}

const prompt = [Array.from({ length: promptLength }, (_, i) => (i * 7919) % 50000)];
// Warm-up (kernel setup, allocator growth) on a short prompt, then the measured prefill.
{
  const cache = model.newCache();
  timedStep([prompt[0].slice(0, 8)], cache).logits.dispose();
  cache.dispose();
}
const cache = model.newCache();
t0 = performance.now();
const prefill = timedStep(prompt, cache);
const prefillSeconds = (performance.now() - t0) / 1000;
let next = tf.tidy(() => tf.argMax(prefill.logits, -1)).dataSync()[0];
prefill.logits.dispose();

const decodeTimes = { embed: 0, blocks: 0, head: 0 };
t0 = performance.now();
for (let i = 0; i < decodeSteps; i++) {
  const step = timedStep([[next]], cache);
  next = tf.tidy(() => tf.argMax(step.logits, -1)).dataSync()[0];
  step.logits.dispose();
  for (const k of Object.keys(decodeTimes)) decodeTimes[k] += step.times[k];
}
const decodeSeconds = (performance.now() - t0) / 1000;
cache.dispose();
sampleMemory();

// Per token and 24-layer extrapolation: embedding/head cost stays, block cost scales with the layer count.
const perStep = (ms) => ms / decodeSteps / 1000;
const decodeFixed = perStep(decodeTimes.embed + decodeTimes.head);
const decodePerBlock = perStep(decodeTimes.blocks) / layers;
// Measured end to end (wall clock, sampling included); the 24-layer figure from the per-unit times.
const decodeTokS = decodeSteps / decodeSeconds;
const decodeTokS24 = 1 / (decodeFixed + decodePerBlock * FULL_LAYERS);
const prefillFixed = (prefill.times.embed + prefill.times.head) / 1000;
const prefillPerBlock = prefill.times.blocks / 1000 / layers;
const prefillTokS = promptLength / prefillSeconds;
const prefillTokS24 = promptLength / (prefillFixed + prefillPerBlock * FULL_LAYERS);

const bytesPerToken = (L) => decodeBytesPerToken(config, L);
const prefillFlops = (L) => flopsOf(config, promptLength, L);
const prefillGflops = prefillFlops(layers) / prefillSeconds / 1e9;
const bound = (gbs, L) => (gbs * 1e9) / bytesPerToken(L);

const rows = [
  { name: 'matmul 1024^3 (baseline)', value: mm1024, unit: 'GFLOP/s' },
  { name: `matmul ${promptLength}x${d}x${4 * d}`, value: mmFfn, unit: 'GFLOP/s' },
  { name: `prefill ${layers}L FLOP rate`, value: prefillGflops, unit: 'GFLOP/s' },
  { name: `prefill ${layers}L measured`, value: prefillTokS, unit: 'tokens/s' },
  { name: 'prefill 24L extrapolated', value: prefillTokS24, unit: 'tokens/s' },
  { name: `decode ${layers}L measured`, value: decodeTokS, unit: 'tokens/s' },
  { name: 'decode 24L extrapolated', value: decodeTokS24, unit: 'tokens/s' },
  { name: 'host read bandwidth', value: bw.readGBs, unit: 'GB/s' },
  { name: 'host copy bandwidth', value: bw.copyGBs, unit: 'GB/s' },
  { name: `decode ${layers}L bound (copy bw)`, value: bound(bw.copyGBs, layers), unit: 'tokens/s' },
  {
    name: `decode ${layers}L / bound (copy bw)`,
    value: decodeTokS / bound(bw.copyGBs, layers),
    unit: 'fraction',
  },
  {
    name: `decode ${layers}L / bound (read bw)`,
    value: decodeTokS / bound(bw.readGBs, layers),
    unit: 'fraction',
  },
  { name: `prefill ${layers}L / matmul 1024^3`, value: prefillGflops / mm1024, unit: 'fraction' },
  { name: `prefill ${layers}L / matmul FFN shape`, value: prefillGflops / mmFfn, unit: 'fraction' },
  { name: `weights ${layers}L`, value: mib(bytesPerToken(layers)), unit: 'MiB' },
  { name: 'weights 24L', value: mib(bytesPerToken(FULL_LAYERS)), unit: 'MiB' },
  { name: 'peak tensor memory', value: mib(peakTensorBytes), unit: 'MiB' },
  { name: 'peak process RSS', value: mib(peakRss), unit: 'MiB' },
];
report('model-decode', {
  rows,
  baseline: 'matmul 1024^3 (baseline)',
  notes: {
    backend: values.backend,
    shape: `d_model ${d}, 16 heads, vocab ${vocab}, ${layers} of 24 layers (random weights, fp32)`,
    run: `prompt ${promptLength} tokens, then ${decodeSteps} greedy decode steps, batch 1, block matrices ${values.layout}`,
    'decode split per token (ms)': `embed ${(1000 * perStep(decodeTimes.embed)).toFixed(1)}, blocks ${(1000 * perStep(decodeTimes.blocks)).toFixed(1)} (${(1000 * decodePerBlock).toFixed(1)}/block), head ${(1000 * perStep(decodeTimes.head)).toFixed(1)}`,
    'prefill split (s)': `embed+head ${prefillFixed.toFixed(2)}, blocks ${(prefill.times.blocks / 1000).toFixed(2)}`,
    'init (s)': initSeconds.toFixed(1),
    extrapolation: '24L = measured embed/head time + 24 x measured per-block time',
  },
});
model.dispose();
