// Host-side overhead of KV-cached greedy decoding, counted rather than timed: GPU->CPU readbacks, tfjs kernels
// and GPU dispatches per decoded token, shader programs compiled and GPU buffers created while decoding, plus
// (noisy) wall time per token. Runs on any backend; the program and buffer counts exist on webgpu only.
// Usage: node bench/model/decode-overhead.mjs [--backend webgpu] [--d-model 256] [--layers 4] [--heads 4]
//   [--vocab 50432] [--prompt 16] [--decode 32] [--max-seq 256]
// On a machine without a GPU, webgpu runs on SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
import { parseArgs } from 'node:util';
import { selectBackend } from '@mptjs/kernels';
import { generate, MPTModel, parseMptConfig } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    'd-model': { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    heads: { type: 'string', default: '4' },
    vocab: { type: 'string', default: '50432' },
    prompt: { type: 'string', default: '16' },
    decode: { type: 'string', default: '32' },
    'max-seq': { type: 'string', default: '256' },
    json: { type: 'boolean', default: false },
  },
});
const newTokens = Number(values.decode);

await selectBackend(values.backend, { log: false });
const backend = tf.backend();
const config = parseMptConfig({
  model_type: 'mpt',
  d_model: Number(values['d-model']),
  n_heads: Number(values.heads),
  n_layers: Number(values.layers),
  expansion_ratio: 4,
  max_seq_len: Number(values['max-seq']),
  vocab_size: Number(values.vocab),
  no_bias: true,
  attn_config: { alibi: true, alibi_bias_max: 8, qk_ln: true, attn_impl: 'flash' },
});
const model = MPTModel.init(config, 0);

const counts = { readbacks: 0, readbackElements: 0, kernels: 0, dispatches: 0, buffers: 0 };
const byKernel = new Map();
const wrap = (obj, name, fn) => {
  const original = obj[name];
  if (typeof original !== 'function') return;
  obj[name] = function (...args) {
    fn(...args);
    return original.apply(this, args);
  };
};
// Elements a read returns, where the backend says (webgpu and cpu keep a shape or the values per data id).
const elements = (dataId) => {
  const shape = backend.tensorMap?.get(dataId)?.shape;
  if (shape) return shape.reduce((a, b) => a * b, 1);
  return backend.data?.get(dataId)?.values?.length ?? 0;
};
const onRead = (dataId) => {
  counts.readbacks++;
  counts.readbackElements += elements(dataId);
};
wrap(backend, 'read', onRead);
wrap(backend, 'readSync', onRead);
wrap(backend, 'runWebGPUProgram', () => counts.dispatches++);
wrap(tf.engine(), 'runKernel', (name) => {
  counts.kernels++;
  byKernel.set(name, (byKernel.get(name) ?? 0) + 1);
});
if (backend.device) wrap(backend.device, 'createBuffer', () => counts.buffers++);
const programs = () => (backend.pipelineCache ? Object.keys(backend.pipelineCache).length : 0);
const snap = () => ({ ...counts, programs: programs(), at: performance.now() });

const prompt = Array.from({ length: Number(values.prompt) }, (_, i) => (i * 7919 + 13) % config.vocabSize);

async function run(maxNewTokens) {
  const marks = [];
  const before = snap();
  const out = await generate(model, prompt, {
    maxNewTokens,
    greedy: true,
    onToken: () => marks.push(snap()),
  });
  const end = snap();
  return { tokens: out.tokens, before, marks, end };
}
const diff = (r, key) => r.end[key] - r.before[key];

// Cold: a one-token run compiles what prefill needs, then a full run compiles what decoding needs (and shows
// whether compiles keep coming token after token). Warm: a full run minus a one-token run is the decode steps'
// share, per token, whatever order generate records steps and reads in.
const prefillCold = await run(1);
const decodeCold = await run(newTokens);
const prefillWarm = await run(1);
const full = await run(newTokens);
const steps = newTokens - 1;
const perToken = (key) => (diff(full, key) - diff(prefillWarm, key)) / steps;
const programsAfter = decodeCold.marks.map((m) => m.programs - decodeCold.before.programs);
const result = {
  backend: tf.getBackend(),
  shape: {
    d_model: config.dModel,
    n_layers: config.nLayers,
    n_heads: config.nHeads,
    vocab: config.vocabSize,
  },
  prompt: prompt.length,
  decode_tokens: newTokens,
  readbacks_per_token: perToken('readbacks'),
  readback_elements_per_token: perToken('readbackElements'),
  kernels_per_token: perToken('kernels'),
  dispatches_per_token: perToken('dispatches'),
  buffers_created_per_token: perToken('buffers'),
  programs_compiled_prefill: diff(prefillCold, 'programs'),
  programs_compiled_decoding: diff(decodeCold, 'programs'),
  // New programs once the third token is out (0: the set stops growing after the first steps).
  programs_compiled_after_token_3: programsAfter[programsAfter.length - 1] - programsAfter[2],
  programs_compiled_warm: diff(full, 'programs') + diff(prefillWarm, 'programs'),
  ms_per_token: (diff(full, 'at') - diff(prefillWarm, 'at')) / steps,
  same_tokens: decodeCold.tokens.join() === full.tokens.join(),
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(result);
  const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 40);
  console.log('kernels over all runs:', Object.fromEntries(top));
}
model.dispose();
