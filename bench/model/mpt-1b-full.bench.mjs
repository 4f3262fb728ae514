// The full mpt-1b-redpajama-200b shape (24 layers, 1,311,442,944 fp32 parameters = 5.25 GB) generating on the wasm
// backend through `mptjs-serve generate --json`, with weight offload (blocks that do not fit the 4 GiB wasm heap
// are streamed from host memory). Writes a random-weight checkpoint once (default /tmp/mptjs-mpt1b-random), then
// runs the CLI on it in a child process, sampling its peak RSS, and reports the CLI's own timings next to
// baselines measured in this run: host memory bandwidth and a 1024^3 tfjs-wasm matmul.
// Usage: node bench/model/mpt-1b-full.bench.mjs [--dir /tmp/mptjs-mpt1b-random] [--prompt 128] [--decode 16]
//          [--offload auto|on|off] [--resident-weights-gib N] [--quantize int8] [--layers 24 (fewer: a quick check of the bench)]
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { saveCheckpoint } from '@mptjs/hf-loader';
import { selectBackend } from '@mptjs/kernels';
import { expectedParameterShapes, quantizedWeightBytes } from '@mptjs/mpt-model';
import { measureBandwidth } from '../baselines/bandwidth.mjs';
import { matmulGflops } from '../baselines/matmul-rate.mjs';
import { report } from '../lib.mjs';
import { decodeBytesPerToken, mpt1bConfig, prefillFlops } from './mpt-1b-shape.mjs';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    layers: { type: 'string', default: '24' },
    prompt: { type: 'string', default: '128' },
    decode: { type: 'string', default: '16' },
    offload: { type: 'string', default: 'auto' },
    quantize: { type: 'string' },
    'resident-weights-gib': { type: 'string' },
    'write-only': { type: 'boolean', default: false },
  },
});
const promptLength = Number(values.prompt);
const decodeSteps = Number(values.decode);
const CLI = fileURLToPath(new URL('../../apps/serve/dist/cli.js', import.meta.url));
const mib = (bytes) => bytes / 2 ** 20;
const layers = Number(values.layers);
values.dir ??= layers === 24 ? '/tmp/mptjs-mpt1b-random' : `/tmp/mptjs-mpt1b-random-${layers}L`;

const config = mpt1bConfig(layers);
const d = config.dModel;
const vocab = config.vocabSize;
const nParams = [...expectedParameterShapes(config).values()].reduce(
  (n, s) => n + s.reduce((a, b) => a * b, 1),
  0,
);

/**
 * Uniform weights with std 0.02 (LayerNorm weights 1) from xorshift32: drawing 1.3B normals in JS would take
 * minutes, and the timings do not depend on the values.
 */
function randomStateDict(seed) {
  const sd = new Map();
  let s = seed >>> 0 || 1;
  const half = 0.02 * Math.sqrt(3);
  for (const [name, shape] of expectedParameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 1) data.fill(1);
    else {
      const scale = (2 * half) / 2 ** 32;
      for (let i = 0; i < data.length; i++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        data[i] = (s >>> 0) * scale - half;
      }
    }
    sd.set(name, { shape, data });
  }
  return sd;
}

if (values['write-only']) {
  const t0 = performance.now();
  await saveCheckpoint(values.dir, config, randomStateDict(1234), { shardSizeBytes: 2 ** 30 });
  console.log(
    `wrote ${values.dir} (${nParams} parameters) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  process.exit(0);
}

/** Runs `node args`, echoing stderr, sampling the child's peak RSS (VmHWM) until it exits. */
function runChild(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakRss = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
      } catch {
        // The child has exited between samples.
      }
    };
    const timer = setInterval(sample, 250);
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
      process.stderr.write(c);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      if (code !== 0) reject(new Error(`${args.join(' ')} exited with ${code}:\n${stderr}`));
      else resolve({ stdout, stderr, peakRss });
    });
  });
}

if (!existsSync(`${values.dir}/model.safetensors.index.json`)) {
  console.log(`writing a random-weight checkpoint to ${values.dir} ...`);
  // In its own process, so the 5.25 GB of host arrays are gone before the measured run.
  await runChild([
    fileURLToPath(import.meta.url),
    '--write-only',
    '--dir',
    values.dir,
    '--layers',
    String(layers),
  ]);
}
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm --filter @mptjs/serve build`);

// Baselines in this run, before the model run: host bandwidth and a plain 1024^3 tfjs-wasm matmul.
const bw = measureBandwidth();
await selectBackend('wasm', { log: false });
// The machine is shared: the matmul baselines run before and after the model run, and the faster of the two is
// the baseline (the conservative choice for the fractions).
const before = [await matmulGflops(1024, 1024, 1024), await matmulGflops(promptLength, 2048, 8192)];

const prompt = Array.from({ length: promptLength }, (_, i) => (i * 7919) % 50000);
const cliArgs = [
  CLI,
  'generate',
  values.dir,
  '--prompt-ids',
  prompt.join(','),
  '--max-new-tokens',
  String(decodeSteps),
  '--backend',
  'wasm',
  '--offload',
  values.offload,
  '--json',
];
if (values['resident-weights-gib']) cliArgs.push('--resident-weights-gib', values['resident-weights-gib']);
if (values.quantize) cliArgs.push('--quantize', values.quantize);
const t0 = performance.now();
const run = await runChild(cliArgs);
const wallSeconds = (performance.now() - t0) / 1000;
const after = [await matmulGflops(1024, 1024, 1024), await matmulGflops(promptLength, 2048, 8192)];
const mm1024 = Math.max(before[0], after[0]);
const mmFfn = Math.max(before[1], after[1]);
const out = JSON.parse(run.stdout.trim().split('\n').at(-1));
const {
  load_s: loadSeconds,
  prefill_tokens_per_s: prefillTokS,
  decode_tokens_per_s: decodeTokS,
} = out.timings;
if (out.ids.length !== decodeSteps)
  throw new Error(`expected ${decodeSteps} new tokens, got ${out.ids.length}`);
const offload = out.memory.offload;

// int8: one byte per block and head weight plus a float32 scale per row; the fp32 embedding is only looked up.
const bytesPerToken = values.quantize
  ? quantizedWeightBytes(config).int8 - 4 * config.vocabSize * config.dModel
  : decodeBytesPerToken(config);
const bound = (gbs) => (gbs * 1e9) / bytesPerToken;
const prefillGflops = (prefillFlops(config, promptLength) * prefillTokS) / promptLength / 1e9;

const rows = [
  { name: 'matmul 1024^3 (baseline)', value: mm1024, unit: 'GFLOP/s' },
  { name: 'matmul 1024^3 before', value: before[0], unit: 'GFLOP/s' },
  { name: 'matmul 1024^3 after', value: after[0], unit: 'GFLOP/s' },
  { name: `matmul ${promptLength}x2048x8192`, value: mmFfn, unit: 'GFLOP/s' },
  { name: 'host read bandwidth', value: bw.readGBs, unit: 'GB/s' },
  { name: 'host copy bandwidth', value: bw.copyGBs, unit: 'GB/s' },
  { name: 'load (CLI load_s)', value: loadSeconds, unit: 's' },
  { name: `prefill ${promptLength} tokens (CLI)`, value: prefillTokS, unit: 'tokens/s' },
  { name: 'prefill FLOP rate', value: prefillGflops, unit: 'GFLOP/s' },
  { name: 'prefill / matmul 1024^3', value: prefillGflops / mm1024, unit: 'fraction' },
  { name: 'prefill / matmul FFN shape', value: prefillGflops / mmFfn, unit: 'fraction' },
  { name: 'decode (CLI)', value: decodeTokS, unit: 'tokens/s' },
  { name: 'decode bound (read bw)', value: bound(bw.readGBs), unit: 'tokens/s' },
  { name: 'decode / bound (read bw)', value: decodeTokS / bound(bw.readGBs), unit: 'fraction' },
  { name: 'decode / bound (copy bw)', value: decodeTokS / bound(bw.copyGBs), unit: 'fraction' },
  { name: 'weights read per token', value: mib(bytesPerToken), unit: 'MiB' },
  { name: 'peak process RSS', value: mib(run.peakRss), unit: 'MiB' },
  { name: 'wasm heap (memory.buffer)', value: mib(out.memory.heap_bytes ?? 0), unit: 'MiB' },
];
if (offload) {
  rows.push(
    { name: 'peak tensor memory (tf.memory)', value: mib(offload.peak_tensor_bytes), unit: 'MiB' },
    { name: 'resident weights', value: mib(offload.resident_weight_bytes), unit: 'MiB' },
    {
      name: 'streamed weights per token',
      value: mib((bytesPerToken / config.nLayers) * offload.streamed_blocks),
      unit: 'MiB',
    },
  );
}
const gib = values['resident-weights-gib'];
const reportName = values.quantize
  ? `model-mpt-1b-full-${values.quantize}`
  : gib
    ? `model-mpt-1b-full-resident-${gib}gib`
    : `model-mpt-1b-full-offload-${values.offload}`;
report(reportName, {
  rows,
  baseline: 'matmul 1024^3 (baseline)',
  notes: {
    shape: `d_model ${d}, 16 heads, ${layers} layers, vocab ${vocab}, ${nParams} parameters (random weights, ${values.quantize ?? 'fp32'}, ${values.dir})`,
    run: `mptjs-serve generate --backend wasm ${gib ? `--resident-weights-gib ${gib}` : `--offload ${values.offload}`}${values.quantize ? ` --quantize ${values.quantize}` : ''}: prompt ${promptLength} ids, ${decodeSteps} greedy tokens, batch 1`,
    offload: offload
      ? `${offload.resident_blocks} of ${layers} blocks resident, ${offload.streamed_blocks} streamed`
      : 'off (all weights resident)',
    'CLI wall time (s)': wallSeconds.toFixed(1),
    tokens: out.ids.join(','),
  },
});
