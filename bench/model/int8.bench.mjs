// Weight-only int8 inference on the wasm backend, three measurements in one run:
//  kernel: one Linear at the mpt-1b FFN shape (2048 -> 8192), fp32 (the model's wasm path) vs int8 (our kernel).
//  mpt-1b: the full mpt-1b shape (random weights) generating through `mptjs-serve generate --json`, fp32 (offloaded
//          where it does not fit the 4 GiB heap) vs `--quantize int8` (always resident), with each one's
//          bandwidth bound (bytes of weights read per token over host read bandwidth, measured in this run).
//  ppl:    perplexity of a trained demo model on held-out demo-corpus text, fp32 vs int8.
// The mpt-1b checkpoint is the one bench/model/mpt-1b-full.bench.mjs writes (run it with --write-only first).
// The demo model: node apps/train/dist/cli.js tokenizer train <train dirs> --vocab-size 2048 --out <dir>/tokenizer.json
// and node apps/train/dist/cli.js run data/sample/demo.yaml --run-dir <dir>/run (see docs/benchmarks.md).
// Usage: node bench/model/int8.bench.mjs [--only kernel,mpt1b,ppl] [--dir /tmp/mptjs-mpt1b-random] [--layers 24]
//          [--prompt 16] [--decode 8] [--demo /tmp/int8-demo] [--heldout FILE.jsonl] [--max-tokens 4096]
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { linear, quantizeInt8, selectBackend, uploadInt8 } from '@mptjs/kernels';
import { MPTModel, quantizedWeightBytes } from '@mptjs/mpt-model';
import { Tokenizer } from '@mptjs/tokenizer';
import * as tf from '@tensorflow/tfjs-core';
import { measureBandwidth } from '../baselines/bandwidth.mjs';
import { report, timeit } from '../lib.mjs';
import { decodeBytesPerToken, mpt1bConfig } from './mpt-1b-shape.mjs';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'kernel,mpt1b,ppl' },
    dir: { type: 'string' },
    layers: { type: 'string', default: '24' },
    prompt: { type: 'string', default: '16' },
    decode: { type: 'string', default: '8' },
    demo: { type: 'string', default: '/tmp/int8-demo' },
    heldout: { type: 'string' },
    'max-tokens': { type: 'string', default: '4096' },
  },
});
const parts = new Set(values.only.split(','));
const layers = Number(values.layers);
values.dir ??= layers === 24 ? '/tmp/mptjs-mpt1b-random' : `/tmp/mptjs-mpt1b-random-${layers}L`;
values.heldout ??= `${values.demo}/heldout/heldout.jsonl`;
const CLI = fileURLToPath(new URL('../../apps/serve/dist/cli.js', import.meta.url));
const mib = (bytes) => bytes / 2 ** 20;

await selectBackend('wasm', { log: false });

if (parts.has('kernel')) {
  const [k, n] = [2048, 8192];
  const w = tf.randomUniform([n, k], -0.03, 0.03);
  const int8 = uploadInt8(quantizeInt8(w.dataSync(), [n, k]));
  const rows = [];
  for (const m of [1, 16, 128]) {
    const x = tf.randomNormal([m, k]);
    const time = (p) =>
      timeit(
        async () => {
          const y = linear(x, p);
          await y.data();
          y.dispose();
        },
        { repeats: m === 1 ? 15 : 5, warmup: 2 },
      );
    const fp32 = await time({ weight: w });
    const q8 = await time({ weight: w, int8 });
    const gflops = (t) => (2 * m * k * n) / t.median_s / 1e9;
    rows.push(
      { name: `fp32 linear M=${m}${m === 1 ? ' (baseline)' : ''}`, value: gflops(fp32), unit: 'GFLOP/s' },
      { name: `int8 linear M=${m}`, value: gflops(q8), unit: 'GFLOP/s' },
    );
    if (m === 1) {
      rows.push(
        { name: 'fp32 linear M=1 weight GB/s', value: (4 * k * n) / fp32.median_s / 1e9, unit: 'GB/s' },
        { name: 'int8 linear M=1 weight GB/s', value: (k * n) / q8.median_s / 1e9, unit: 'GB/s' },
      );
    }
    x.dispose();
  }
  tf.dispose([w, int8.packed, int8.scales]);
  report('model-int8-kernel', {
    rows,
    baseline: 'fp32 linear M=1 (baseline)',
    notes: { shape: `x [M, ${k}] . W^T, W [${n}, ${k}] (mpt-1b up_proj); fp32 = the model's wasm linear()` },
  });
}

/** Runs `node args`, echoing stderr; resolves with stdout. */
function runChild(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
      process.stderr.write(c);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited with ${code}:\n${stderr}`));
      else resolve(stdout);
    });
  });
}

if (parts.has('mpt1b')) {
  if (!existsSync(`${values.dir}/model.safetensors.index.json`)) {
    throw new Error(
      `${values.dir} is missing: node bench/model/mpt-1b-full.bench.mjs --write-only --layers ${layers}`,
    );
  }
  const config = mpt1bConfig(layers);
  const prompt = Array.from({ length: Number(values.prompt) }, (_, i) => (i * 7919) % 50000);
  const generate = async (extra) => {
    const t0 = performance.now();
    const base = ['generate', values.dir, '--prompt-ids', prompt.join(','), '--backend', 'wasm', '--json'];
    const stdout = await runChild([CLI, ...base, '--max-new-tokens', values.decode, ...extra]);
    const out = JSON.parse(stdout.trim().split('\n').at(-1));
    return { ...out, wall_s: (performance.now() - t0) / 1000 };
  };
  const bw = measureBandwidth();
  const fp32 = await generate(['--offload', 'auto']);
  const int8 = await generate(['--quantize', 'int8']);
  // Bytes of weights a decode step reads: every block matrix and norm and the head (int8: 1 byte per matrix
  // weight plus a float32 scale per row; the fp32 embedding is only looked up, one row).
  const fp32Bytes = decodeBytesPerToken(config);
  const { int8: int8Resident } = quantizedWeightBytes(config);
  const int8Bytes = int8Resident - 4 * config.vocabSize * config.dModel;
  const bound = (bytes) => (bw.readGBs * 1e9) / bytes;
  const rows = [
    { name: 'fp32 decode (baseline)', value: fp32.timings.decode_tokens_per_s, unit: 'tokens/s' },
    { name: 'int8 decode', value: int8.timings.decode_tokens_per_s, unit: 'tokens/s' },
    { name: 'fp32 decode bound (read bw)', value: bound(fp32Bytes), unit: 'tokens/s' },
    { name: 'int8 decode bound (read bw)', value: bound(int8Bytes), unit: 'tokens/s' },
    { name: 'fp32 prefill', value: fp32.timings.prefill_tokens_per_s, unit: 'tokens/s' },
    { name: 'int8 prefill', value: int8.timings.prefill_tokens_per_s, unit: 'tokens/s' },
    { name: 'fp32 load', value: fp32.timings.load_s, unit: 's' },
    { name: 'int8 load (incl. quantizing)', value: int8.timings.load_s, unit: 's' },
    { name: 'fp32 weights read per token', value: mib(fp32Bytes), unit: 'MiB' },
    { name: 'int8 weights read per token', value: mib(int8Bytes), unit: 'MiB' },
    { name: 'host read bandwidth', value: bw.readGBs, unit: 'GB/s' },
    { name: 'fp32 wasm heap', value: mib(fp32.memory.heap_bytes ?? 0), unit: 'MiB' },
    { name: 'int8 wasm heap', value: mib(int8.memory.heap_bytes ?? 0), unit: 'MiB' },
  ];
  const off = fp32.memory.offload;
  report(`model-int8-mpt1b-${layers}L`, {
    rows,
    baseline: 'fp32 decode (baseline)',
    notes: {
      shape: `mpt-1b shape, ${layers} layers, random weights (${values.dir})`,
      run: `mptjs-serve generate --backend wasm --json: prompt ${prompt.length} ids, ${values.decode} greedy tokens`,
      fp32: off
        ? `--offload auto: ${off.resident_blocks} blocks resident, ${off.streamed_blocks} streamed`
        : 'resident',
      int8: '--quantize int8: all weights resident',
      'wall s (fp32, int8)': `${fp32.wall_s.toFixed(1)}, ${int8.wall_s.toFixed(1)}`,
      'tokens fp32': fp32.ids.join(','),
      'tokens int8': int8.ids.join(','),
    },
  });
}

/** exp(mean next-token NLL) over non-overlapping windows of `ids` (the model's max_seq_len each). */
async function perplexity(model, ids) {
  const t = model.config.maxSeqLen;
  let nll = 0;
  let count = 0;
  for (let start = 0; start + 2 <= ids.length; start += t) {
    const window = ids.slice(start, start + t);
    const sum = tf.tidy(() => {
      const logits = tf.squeeze(model.forward([window.slice(0, -1)]), [0]);
      const logp = tf.logSoftmax(logits);
      const targets = tf.oneHot(tf.tensor1d(window.slice(1), 'int32'), logits.shape[1]);
      return tf.neg(tf.sum(tf.mul(logp, targets)));
    });
    nll += (await sum.data())[0];
    sum.dispose();
    count += window.length - 1;
  }
  return { ppl: Math.exp(nll / count), tokens: count };
}

if (parts.has('ppl')) {
  const exportDir = `${values.demo}/run/export`;
  const tokenizer = await Tokenizer.fromFile(`${values.demo}/tokenizer.json`);
  const docs = readFileSync(values.heldout, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l).text);
  const ids = docs.flatMap((text) => tokenizer.encode(text)).slice(0, Number(values['max-tokens']));
  const { config, stateDict } = await loadCheckpoint(exportDir);
  const fp32Model = MPTModel.fromStateDict(config, stateDict);
  const fp32 = await perplexity(fp32Model, ids);
  fp32Model.dispose();
  const int8Model = MPTModel.fromStateDict(config, stateDict, { quantize: 'int8' });
  const int8 = await perplexity(int8Model, ids);
  int8Model.dispose();
  report('model-int8-ppl', {
    rows: [
      { name: 'fp32 perplexity (baseline)', value: fp32.ppl, unit: 'ppl' },
      { name: 'int8 perplexity', value: int8.ppl, unit: 'ppl' },
      { name: 'relative change', value: int8.ppl / fp32.ppl - 1, unit: 'fraction' },
    ],
    baseline: 'fp32 perplexity (baseline)',
    notes: {
      model: `${exportDir} (d_model ${config.dModel}, ${config.nLayers} layers, vocab ${config.vocabSize})`,
      text: `${fp32.tokens} scored tokens of ${docs.length} held-out documents (${values.heldout})`,
    },
  });
}
