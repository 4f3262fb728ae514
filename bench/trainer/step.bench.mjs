// Training-step throughput and MFU of a small MPT on one backend (default wasm), against the matmul FLOP/s
// measured in the same process. The unit-chain step (forward keeping unit inputs, then recompute + VJP per unit)
// is compared with a whole-model tf.variableGrads step that keeps every activation (no recompute). On wasm the
// unit-chain step is also timed with tfjs-wasm's own BatchMatMul for batch > 1 products (the baseline our SIMD
// kernel replaces). --profile prints where one unit-chain step spends its time, per kernel.
// Usage: node bench/trainer/step.bench.mjs [--backend wasm] [--d-model 256] [--layers 4] [--seq 128] [--batch 4]
//        [--microbatch 4] (accumulate --batch rows per optimizer step in microbatches, as the trainer does)
//        [--vocab 50432] [--repeats 3] [--profile] [--wasm-kernels off] (off: tfjs-wasm's kernels throughout)
import { parseArgs } from 'node:util';
import { selectBackend, setWasmSimdMatMul } from '@mptjs/kernels';
import { forwardBackwardChain, LocalParameters, MPTModel, parseMptConfig } from '@mptjs/mpt-model';
import {
  clipByGlobalNorm,
  DecoupledAdamW,
  flopsPerSample,
  gradSumOfSquares,
  lmContext,
  measureMatmulFlops,
  mptChainUnits,
} from '@mptjs/trainer';
import * as tf from '@tensorflow/tfjs-core';
import { report } from '../lib.mjs';
import { profileStep } from './profile.mjs';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    'd-model': { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    heads: { type: 'string', default: '4' },
    seq: { type: 'string', default: '128' },
    batch: { type: 'string', default: '4' },
    microbatch: { type: 'string' },
    vocab: { type: 'string', default: '8192' },
    repeats: { type: 'string', default: '2' },
    profile: { type: 'boolean', default: false },
    'wasm-kernels': { type: 'string', default: 'on' },
  },
});
const seq = Number(values.seq);
const batch = Number(values.batch);
// Gradient accumulation as the trainer does it: `batch` rows per optimizer step in microbatches of this size.
const microbatch = Number(values.microbatch ?? values.batch);
if (!(microbatch >= 1 && batch % microbatch === 0)) throw new Error('--microbatch must divide --batch');
const repeats = Number(values.repeats);

const info = await selectBackend(values.backend, { log: false });
if (values['wasm-kernels'] === 'off') setWasmSimdMatMul('off');
const matmulN = info.name === 'cpu' ? 256 : 1024;
let peak = await measureMatmulFlops(matmulN, 5);

const config = parseMptConfig({
  model_type: 'mpt',
  d_model: Number(values['d-model']),
  n_heads: Number(values.heads),
  n_layers: Number(values.layers),
  expansion_ratio: 4,
  max_seq_len: seq,
  vocab_size: Number(values.vocab),
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true },
});
const model = MPTModel.init(config, 1);
const nParams = model.numParameters;
const flops = flopsPerSample(config, nParams, seq);
const optimizer = new DecoupledAdamW({ lr: 2e-4, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0 });
const host = new LocalParameters(model.params);
const units = mptChainUnits(model);

let s = 12345;
const tokens = Int32Array.from({ length: batch * seq }, () => {
  s = (s * 1103515245 + 12345) % 2 ** 31;
  return s % Math.min(config.vocabSize, 50277);
});
const ids = tf.tensor2d(tokens, [batch, seq], 'int32');
const ctx = lmContext(model, ids);
const micro = Array.from({ length: batch / microbatch }, (_, i) => {
  const part = tf.slice(ids, [i * microbatch, 0], [microbatch, seq]);
  return { ids: part, ctx: lmContext(model, part) };
});

async function optimizerStep(grads) {
  const list = [...grads.values()];
  const norm = Math.sqrt(await gradSumOfSquares(list));
  const clipped = clipByGlobalNorm(list, norm, 1.0);
  const names = [...grads.keys()];
  optimizer.step(
    names.map((n, i) => ({ name: n, param: model.params.get(n), grad: clipped[i] })),
    2e-4,
  );
  tf.dispose([...new Set([...list, ...clipped])]);
}

async function chainStep() {
  for (const m of micro) await forwardBackwardChain(units, m.ids, m.ctx, host, microbatch / batch);
  await optimizerStep(host.takeGradients());
}

async function wholeModelStep() {
  const vars = [...model.params.values()];
  const { value, grads } = tf.variableGrads(() => {
    let x = ids;
    for (const u of units) x = u.forward(model.params, x, ctx);
    return x;
  }, vars);
  await value.data();
  value.dispose();
  const byName = new Map([...model.params].map(([n, v]) => [n, grads[v.name]]));
  await optimizerStep(byName);
}

if (values.profile) await profileStep(chainStep);
// The variants run in rotation, one step each per round with a 1024^3 matmul before each round, so a change in
// the machine's load (it is shared) hits every figure alike; each figure is the median over the rounds.
// The whole-model step keeps every activation of the full batch, so it runs only without accumulation.
const variants = microbatch === batch ? { chain: chainStep, whole: wholeModelStep } : { chain: chainStep };
if (info.name === 'wasm' && values['wasm-kernels'] !== 'off') {
  variants.stock = async () => {
    const previous = setWasmSimdMatMul('off');
    try {
      await chainStep();
    } finally {
      setWasmSimdMatMul(previous);
    }
  };
}
const seconds = async (fn) => {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const fn of Object.values(variants)) await fn(); // warm-up
const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
const peaks = [peak];
for (let r = 0; r < repeats; r++) {
  if (r > 0) peaks.push(await measureMatmulFlops(matmulN, 3));
  for (const [k, fn] of Object.entries(variants)) times[k].push(await seconds(fn));
}
const chain = { median_s: median(times.chain) };
const whole = times.whole ? { median_s: median(times.whole) } : undefined;
const stock = times.stock ? { median_s: median(times.stock) } : undefined;
peak = median(peaks);
const tokensPerStep = batch * seq;
const rows = [
  { name: `matmul ${matmulN}^3 (peak reference)`, value: peak / 1e9, unit: 'GFLOP/s' },
  { name: 'unit-chain step: model FLOP/s', value: (flops * batch) / chain.median_s / 1e9, unit: 'GFLOP/s' },
  { name: 'unit-chain step: tokens/s', value: tokensPerStep / chain.median_s, unit: 'tokens/s' },
  { name: 'unit-chain step: time', value: chain.median_s, unit: 's' },
  {
    name: 'unit-chain step: MFU vs matmul',
    value: (flops * batch) / chain.median_s / peak,
    unit: 'fraction',
  },
];
if (whole) {
  rows.push(
    { name: 'whole-model step: tokens/s', value: tokensPerStep / whole.median_s, unit: 'tokens/s' },
    {
      name: 'whole-model step: MFU vs matmul',
      value: (flops * batch) / whole.median_s / peak,
      unit: 'fraction',
    },
  );
}
if (stock) {
  rows.push(
    {
      name: 'unit-chain, tfjs-wasm batched matmul: tokens/s',
      value: tokensPerStep / stock.median_s,
      unit: 'tokens/s',
    },
    { name: 'unit-chain, tfjs-wasm batched matmul: time', value: stock.median_s, unit: 's' },
    {
      name: 'unit-chain, tfjs-wasm batched matmul: MFU',
      value: (flops * batch) / stock.median_s / peak,
      unit: 'fraction',
    },
  );
}
report('trainer-step', {
  rows,
  baseline: stock ? 'unit-chain, tfjs-wasm batched matmul: tokens/s' : 'unit-chain step: tokens/s',
  notes: {
    backend: info.adapter ? `${info.name} (${info.adapter.summary})` : info.name,
    model: `d_model ${config.dModel}, ${config.nLayers} layers, ${config.nHeads} heads, vocab ${config.vocabSize}, ${nParams.toLocaleString('en-US')} params`,
    step: `batch ${batch} (microbatches of ${microbatch}) x seq ${seq} = ${tokensPerStep} tokens, decoupled_adamw + clipping, fp32`,
    flops: `MFU uses 6*N*seq + 12*L*d*seq^2 per sample (${((flops * batch) / 1e9).toFixed(1)} GFLOP/step); the recompute is not counted`,
  },
});
tf.dispose([ids, ctx.targets, ...micro.flatMap((m) => [m.ids, m.ctx.targets])]);
model.dispose();
