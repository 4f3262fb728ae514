// Greedy decode on the wasm backend against tfjs-wasm's own matrix-vector bandwidth, measured in the same run.
// Decode reads every weight once per token, so tokens/s x weight bytes per token is the bandwidth a decode step
// streams; this bench reports it as a fraction of what tfjs-wasm's matmul reaches on a plain matrix-vector
// product over a large weight (the better of its two layouts, W x^T and x W, best of several calls).
// Shapes: random MPTs with a 50k vocabulary (ALiBi, no biases, expansion 4), fp32 and weight-only int8.
// int8 products of a few rows split over threads (`MPTJS_WASM_THREADS`, default min(cores, 4)); --threads 1,2,1,2
// runs int8 once per listed count, in that order, so a one-thread baseline alternates with the split in one run.
// Decode steps of one to four sequences run on heap kernels without tfjs ops (mpt-model's wasm-decode-step);
// --ops also runs every mode with that off (`setWasmHeapDecode(false)`: the tfjs-op path), right after it.
// Usage: node bench/model/wasm-decode.bench.mjs [--shapes 203m,51m] [--prompt 8] [--decode 24] [--modes fp32,int8]
//   [--threads 1,2] [--ops]
import { parseArgs } from 'node:util';
import {
  INT8_LINEAR_KERNEL,
  int8ThreadPool,
  registerInt8LinearKernel,
  selectBackend,
  setWasmThreads,
  wasmThreads,
} from '@mptjs/kernels';
import {
  generate,
  MPTModel,
  parseMptConfig,
  quantizedWeightBytes,
  setWasmHeapDecode,
} from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { report } from '../lib.mjs';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: '203m,51m' },
    modes: { type: 'string', default: 'fp32,int8' },
    prompt: { type: 'string', default: '8' },
    decode: { type: 'string', default: '24' },
    'ref-size': { type: 'string', default: '4096' },
    threads: { type: 'string' },
    ops: { type: 'boolean', default: false },
  },
});
const SHAPES = {
  '203m': { d_model: 1024, n_layers: 12, n_heads: 16 },
  '51m': { d_model: 512, n_layers: 8, n_heads: 8 },
};
const promptLength = Number(values.prompt);
const decodeSteps = Number(values.decode);

await selectBackend('wasm', { log: false });

/** GB/s of weight bytes tfjs-wasm's matmul streams for one row of x against a `size x size` weight. */
function matVecBandwidth(size, repeats = 12) {
  const w = tf.randomUniform([size, size], -1, 1);
  const x = tf.randomUniform([1, size], -1, 1);
  const xT = tf.reshape(x, [size, 1]);
  const best = (fn) => {
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < repeats + 2; i++) {
      const t0 = performance.now();
      const y = fn();
      y.dataSync();
      const s = (performance.now() - t0) / 1000;
      y.dispose();
      if (i >= 2) min = Math.min(min, s);
    }
    return (4 * size * size) / min / 1e9;
  };
  const outIn = best(() => tf.matMul(w, xT));
  const inOut = best(() => tf.matMul(x, w));
  tf.dispose([w, x, xT]);
  return { outIn, inOut };
}

const ref = matVecBandwidth(Number(values['ref-size']));
const refGBs = Math.max(ref.outIn, ref.inOut);

function configOf(name) {
  const s = SHAPES[name];
  if (!s) throw new Error(`unknown shape "${name}" (known: ${Object.keys(SHAPES).join(', ')})`);
  return parseMptConfig({
    model_type: 'mpt',
    ...s,
    expansion_ratio: 4,
    max_seq_len: 512,
    vocab_size: 50432,
    no_bias: true,
    attn_config: { alibi: true, alibi_bias_max: 8 },
  });
}

// Time spent inside the int8 kernel (all its products, whatever the thread count), to tell the products apart
// from the rest of a step.
registerInt8LinearKernel();
const int8Kernel = tf.getKernel(INT8_LINEAR_KERNEL, 'wasm');
const int8Func = int8Kernel.kernelFunc;
let int8Ms = 0;
int8Kernel.kernelFunc = (args) => {
  const t0 = performance.now();
  const out = int8Func(args);
  int8Ms += performance.now() - t0;
  return out;
};

/**
 * Greedy decode tokens/s over the steps after the first token (which includes the prefill), and the int8
 * kernel's milliseconds a step over the same steps.
 */
async function decodeRate(model) {
  const prompt = Array.from({ length: promptLength }, (_, i) => (i * 7919 + 11) % 50000);
  // Warm-up: kernel instantiation, allocator growth.
  await generate(model, prompt, { maxNewTokens: 3, temperature: 0 });
  const stamps = [];
  let int8Start = 0;
  const result = await generate(model, prompt, {
    maxNewTokens: decodeSteps + 1,
    temperature: 0,
    onToken: () => {
      stamps.push(performance.now());
      if (stamps.length === 1) int8Start = int8Ms;
    },
  });
  const seconds = (stamps[stamps.length - 1] - stamps[0]) / 1000;
  const steps = stamps.length - 1;
  return { tokS: steps / seconds, tokens: result.tokens, int8MsPerStep: (int8Ms - int8Start) / steps };
}

const rows = [
  { name: 'tfjs-wasm matrix-vector W x^T', value: ref.outIn, unit: 'GB/s' },
  { name: 'tfjs-wasm matrix-vector x W', value: ref.inOut, unit: 'GB/s' },
  { name: 'tfjs-wasm matrix-vector (reference)', value: refGBs, unit: 'GB/s' },
];
const notes = {
  reference: `best of ${values['ref-size']}x${values['ref-size']} float32 weight, one row of x, both layouts`,
  run: `prompt ${promptLength} ids, ${decodeSteps} timed greedy steps after the first token, batch 1`,
};
const modes = values.modes.split(',');
const threadList = values.threads?.split(',').map(Number);
notes.paths = values.ops
  ? 'every mode on heap kernels, then as tfjs ops (rows marked "ops")'
  : 'decode steps on heap kernels (no tfjs ops)';
notes.threads = threadList
  ? `int8 runs on ${threadList.join(', ')} threads in turn`
  : `int8 products split over ${wasmThreads()} thread(s)`;
for (const name of values.shapes.split(',')) {
  const config = configOf(name);
  const bytes = quantizedWeightBytes(config);
  // Per token: every block weight and the head; the embedding is only looked up (one row), so int8 counts the
  // int8 head, not the float32 table.
  const perToken = { fp32: bytes.fp32, int8: bytes.int8 - 4 * config.vocabSize * config.dModel };
  const fp32 = MPTModel.init(config, 0);
  const state = modes.includes('int8') ? await fp32.toStateDict() : null;
  const greedy = {};
  const tokensOf = { fp32: [], int8: [] };
  const runs = [];
  const add = (run) => {
    runs.push({ ...run, heap: true });
    if (values.ops) runs.push({ ...run, heap: false, label: `${run.label} ops` });
  };
  for (const mode of modes) {
    if (mode === 'int8' && threadList) {
      const seen = {};
      for (const t of threadList) {
        seen[t] = (seen[t] ?? 0) + 1;
        add({ mode, threads: t, label: `int8 ${t}t${seen[t] > 1 ? ` #${seen[t]}` : ''}` });
      }
    } else add({ mode, label: mode });
  }
  const int8Model = modes.includes('int8')
    ? MPTModel.fromStateDict(config, state, { quantize: 'int8' })
    : null;
  for (const { mode, threads, label, heap } of runs) {
    if (threads !== undefined) setWasmThreads(threads);
    setWasmHeapDecode(heap);
    // A new pool starts its workers on first use: let them come up before the timed decode.
    if (mode === 'int8') {
      await generate(int8Model, [1], { maxNewTokens: 1, temperature: 0 });
      await int8ThreadPool()?.whenReady();
    }
    const { tokS, tokens, int8MsPerStep } = await decodeRate(mode === 'fp32' ? fp32 : int8Model);
    greedy[mode] = tokens;
    tokensOf[mode].push(tokens);
    const gbs = (tokS * perToken[mode]) / 1e9;
    rows.push({ name: `${name} ${label} decode`, value: tokS, unit: 'tokens/s' });
    rows.push({ name: `${name} ${label} weight stream`, value: gbs, unit: 'GB/s' });
    rows.push({ name: `${name} ${label} / reference`, value: gbs / refGBs, unit: 'fraction' });
    if (mode === 'int8') {
      // The heap step calls the int8 products directly, not through the tfjs kernel timed here.
      if (!heap)
        rows.push({ name: `${name} ${label} int8 products`, value: int8MsPerStep, unit: 'ms/token' });
      rows.push({ name: `${name} ${label} step`, value: 1000 / tokS, unit: 'ms/token' });
    }
  }
  int8Model?.dispose();
  fp32.dispose();
  notes[`${name}`] =
    `d_model ${config.dModel}, ${config.nLayers} layers, ${config.nHeads} heads, vocab ${config.vocabSize}; ` +
    `weight bytes per token fp32 ${(perToken.fp32 / 1e6).toFixed(1)} MB, int8 ${(perToken.int8 / 1e6).toFixed(1)} MB` +
    (greedy.fp32 && greedy.int8
      ? `; greedy tokens fp32 vs int8: ${greedy.fp32.filter((t, i) => t === greedy.int8[i]).length}/${greedy.fp32.length} equal`
      : '') +
    Object.entries(tokensOf)
      .filter(([, list]) => list.length > 1)
      .map(
        ([mode, list]) =>
          `; greedy tokens equal across the ${mode} runs: ${list.every((t) => t.join() === list[0].join())}`,
      )
      .join('');
}
report('model-wasm-decode', { rows, baseline: 'tfjs-wasm matrix-vector (reference)', notes });
