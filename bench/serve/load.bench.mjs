// Serving throughput: aggregate generated tokens/s through the HTTP server at 1, 4, 8 and 16 concurrent streaming
// clients, with p50/p99 time to first token at each level and the ratio to one client; and, as a reference, the
// engine alone decoding batches of 1, 4, 8 and 16 (the batching gain without HTTP or scheduling). Each throughput is
// given per wall-clock second and per CPU second of this process: on a shared machine the second one is the
// steadier measure of the work a token costs.
// Usage: node bench/serve/load.bench.mjs [--backend wasm] [--tokens 48] [--requests 2] [--levels 1,4,8,16]
//          [--shape tiny|51m] [--dist apps/serve/dist] [--temperature 0] [--top-p 1] [--logprobs N] [--stop TEXT]
//          [--context N]
// --shape 51m serves a random-weight MPT of d_model 512, 8 layers, 8 heads and a 50432-token vocabulary (51M
// parameters) instead of the tiny fixture; --temperature/--top-p/--logprobs/--stop set those fields of every request
// (default: greedy, no logprobs, no stop strings); --dist points at another build of the app (to compare two builds);
// --context N makes every prompt N to N + 3 tokens long (uneven, so joined batches are left-padded as served ones
// are), to measure decoding over a long cache.
// Needs the built app (pnpm --filter @mptjs/serve build) and the shared fixture (MPTJS_SHARED_DIR).
import { existsSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, report } from '../lib.mjs';
import { httpLoad } from './http-load.mjs';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const backend = flag('backend', 'wasm');
const maxTokens = Number(flag('tokens', '48'));
const requestsPerClient = Number(flag('requests', '2'));
const LEVELS = flag('levels', '1,4,8,16').split(',').map(Number);
const shape = flag('shape', 'tiny');
if (shape !== 'tiny' && shape !== '51m') throw new Error(`--shape must be tiny or 51m, got ${shape}`);
const dist = resolve(root, flag('dist', 'apps/serve/dist'));
const temperature = Number(flag('temperature', '0'));
const topP = Number(flag('top-p', '1'));
const logprobs = flag('logprobs', undefined);
const stop = flag('stop', undefined);
const context = Number(flag('context', '0'));
const MAX_BATCH = 16;
const shared = resolve(process.env.MPTJS_SHARED_DIR ?? join(root, '..', 'shared'));
const modelDir = join(shared, 'fixtures/mpt-tiny-mosaic');
const tokenizerPath = join(shared, 'data/gpt-neox-20b-tokenizer.json');
if (!existsSync(modelDir)) {
  console.log(`[skip] ${modelDir} missing (set MPTJS_SHARED_DIR)`);
  process.exit(0);
}

const serve = await import(join(dist, 'index.js'));
const model =
  shape === 'tiny'
    ? await serve.loadModel(modelDir, { backend, tokenizer: tokenizerPath, log: () => {} })
    : await randomModel();

/** The 51M shape with random weights, on the requested backend, served with the shared GPT-NeoX tokenizer. */
async function randomModel() {
  // The model packages of the build under test (its own node_modules), not the ones next to this script.
  const fromBuild = (name) => import(join(dist, '..', 'node_modules', '@mptjs', name, 'dist', 'index.js'));
  const { selectBackend } = await fromBuild('kernels');
  const { MPTModel, parseMptConfig } = await fromBuild('mpt-model');
  await selectBackend(backend, { log: () => {} });
  const config = parseMptConfig({
    model_type: 'mosaic_gpt',
    d_model: 512,
    n_heads: 8,
    n_layers: 8,
    mlp_ratio: 4,
    max_seq_len: 2048,
    vocab_size: 50432,
    alibi: true,
    attn_qk_ln: true,
    no_bias: true,
  });
  return {
    engine: new serve.MptEngine(MPTModel.init(config, 1234)),
    tokenizer: await serve.JsonTokenizer.fromFile(tokenizerPath),
  };
}
const promptFor = (i) => {
  const base = model.tokenizer.encode(`Request ${i}: the weather today is`);
  if (!context) return base;
  return Array.from({ length: context + (i % 4) }, (_, j) => base[j % base.length]);
};

// The engine alone decoding B sequences per step (no HTTP, no scheduler); B = 1 is the single-request baseline.
async function engineBatch(size, steps = maxTokens) {
  const seqs = [];
  for (let b = 0; b < size; b++) seqs.push((await model.engine.prefill(promptFor(b))).sequence);
  const tokens = seqs.map(() => 5);
  await model.engine.decode(seqs, tokens); // joins the batch cache
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) await model.engine.decode(seqs, tokens);
  const cpu = process.cpuUsage(c0);
  for (const s of seqs) model.engine.release(s);
  const generated = size * steps;
  return {
    wall: generated / ((performance.now() - t0) / 1000),
    cpu: generated / ((cpu.user + cpu.system) / 1e6),
  };
}
await engineBatch(2, 4); // warm-up
// The baseline is the median of three runs: it is the figure every ratio divides by.
const singles = [await engineBatch(1), await engineBatch(1), await engineBatch(1)];
const median = (xs) => [...xs].sort((a, b) => a - b)[1];
const baseline = { wall: median(singles.map((r) => r.wall)), cpu: median(singles.map((r) => r.cpu)) };
const engineRuns = [];
for (const b of [4, 8, 16]) engineRuns.push([`engine decode, batch ${b}`, await engineBatch(b)]);

const app = serve.createServeApp({
  engine: model.engine,
  tokenizer: model.tokenizer,
  modelId: 'bench',
  maxBatch: MAX_BATCH,
  maxQueue: 64,
});
const { port } = await app.listen(0, '127.0.0.1');
const url = `http://127.0.0.1:${port}/v1/completions`;

/** Streaming clients at `concurrency`, each sending `requestsPerClient` requests in turn. */
function load(concurrency) {
  return httpLoad(url, {
    concurrency,
    requestsPerClient,
    bodyFor: (client, r) => ({
      prompt: promptFor(client * 100 + r),
      max_tokens: maxTokens,
      temperature,
      top_p: topP,
      ...(logprobs === undefined ? {} : { logprobs: Number(logprobs) }),
      ...(stop === undefined ? {} : { stop: [stop] }),
    }),
  });
}

const loadBefore = os.loadavg()[0];
await load(2); // warm-up of the batched path
const runs = [['single-request decode (engine)', baseline], ...engineRuns];
const http = [];
for (const c of LEVELS) {
  const r = await load(c);
  http.push([c, r]);
  runs.push([`http concurrency ${c}`, r]);
}
const loadAfter = os.loadavg()[0];
await app.shutdown(1000);
model.engine.dispose();

// The table for docs/benchmarks.md: each level against one streaming client.
const one = http[0][1];
const info = machine();
console.log(
  `\n${new Date().toISOString()}, ${info.cpu} x${info.cores}, node ${info.node}, ${backend}, load average ${loadBefore.toFixed(1)} before / ${loadAfter.toFixed(1)} after`,
);
console.log(
  '| concurrency | tokens/s (wall) | vs 1 | tokens / CPU s | vs 1 | TTFT p50 (ms) | TTFT p99 (ms) | requests |',
);
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [c, r] of http) {
  console.log(
    `| ${c} | ${r.wall.toFixed(1)} | ${(r.wall / one.wall).toFixed(2)}x | ${r.cpu.toFixed(1)} | ${(r.cpu / one.cpu).toFixed(2)}x | ${(r.p50 * 1000).toFixed(0)} | ${(r.p99 * 1000).toFixed(0)} | ${r.n} |`,
  );
}
console.log('| engine batch | tokens/s (wall) | vs batch 1 | tokens / CPU s | vs batch 1 | | | |');
for (const [name, r] of runs.slice(0, 1 + engineRuns.length)) {
  console.log(
    `| ${name} | ${r.wall.toFixed(1)} | ${(r.wall / baseline.wall).toFixed(2)}x | ${r.cpu.toFixed(1)} | ${(r.cpu / baseline.cpu).toFixed(2)}x | | | |`,
  );
}
console.log('');

const notes = {
  model:
    shape === 'tiny'
      ? 'fixtures/mpt-tiny-mosaic (d_model 64, 2 layers, vocab 50432)'
      : 'random MPT (d_model 512, 8 layers, 8 heads, vocab 50432; 51M parameters)',
  build: dist,
  backend,
  prompts: context ? `${context}-${context + 3} tokens` : 'about 8 tokens',
  workload: `${requestsPerClient} ${temperature === 0 ? 'greedy' : `sampled (temperature ${temperature}, top_p ${topP})`} streaming requests per client${logprobs === undefined ? '' : ` with logprobs ${logprobs}`}${stop === undefined ? '' : ` and stop ${JSON.stringify(stop)}`}, ${maxTokens} new tokens each, max_batch ${MAX_BATCH}; HTTP figures count all generated tokens (prefill included)`,
  load_average: `${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`,
};
const suffix = shape === 'tiny' ? '' : `-${shape}`;
report(`serve-load${suffix}`, {
  rows: runs.map(([name, r]) => ({ name, value: r.wall, unit: 'tokens/s' })),
  baseline: 'http concurrency 1',
  notes,
});
report(`serve-load-cpu${suffix}`, {
  rows: runs.map(([name, r]) => ({ name, value: r.cpu, unit: 'tokens/cpu-s' })),
  baseline: 'http concurrency 1',
  notes,
});
report(`serve-ttft${suffix}`, {
  rows: http.flatMap(([c, r]) => [
    { name: `http concurrency ${c} ttft p50`, value: r.p50 * 1000, unit: 'ms' },
    { name: `http concurrency ${c} ttft p99`, value: r.p99 * 1000, unit: 'ms', requests: r.n },
  ]),
  baseline: 'http concurrency 1 ttft p50',
  notes,
});
