// Serving throughput: generated tokens/s through the HTTP server at 1, 4 and 8 concurrent clients, against the
// single-request decode rate of the same engine measured in the same run (the batching gain). Each figure is
// given per wall-clock second and per CPU second of this process: on a shared machine the second one is the
// steadier measure of the work a token costs.
// Usage: node bench/serve/load.bench.mjs [--backend wasm] [--tokens 48] [--requests 2]
// Needs the built app (pnpm --filter @mptjs/serve build) and the shared fixture (MPTJS_SHARED_DIR).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from '../lib.mjs';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const backend = flag('backend', 'wasm');
const maxTokens = Number(flag('tokens', '48'));
const requestsPerClient = Number(flag('requests', '2'));
const shared = resolve(process.env.MPTJS_SHARED_DIR ?? join(root, '..', 'shared'));
const modelDir = join(shared, 'fixtures/mpt-tiny-mosaic');
const tokenizerPath = join(shared, 'data/gpt-neox-20b-tokenizer.json');
if (!existsSync(modelDir)) {
  console.log(`[skip] ${modelDir} missing (set MPTJS_SHARED_DIR)`);
  process.exit(0);
}

const serve = await import(join(root, 'apps/serve/dist/index.js'));
const model = await serve.loadModel(modelDir, { backend, tokenizer: tokenizerPath, log: () => {} });
const promptFor = (i) => model.tokenizer.encode(`Request ${i}: the weather today is`);

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
for (const b of [4, 8]) engineRuns.push([`engine decode, batch ${b}`, await engineBatch(b)]);

const app = serve.createServeApp({
  engine: model.engine,
  tokenizer: model.tokenizer,
  modelId: 'bench',
  maxBatch: 8,
  maxQueue: 64,
});
const { port } = await app.listen(0, '127.0.0.1');
const url = `http://127.0.0.1:${port}/v1/completions`;

async function client(id, count) {
  let tokens = 0;
  for (let r = 0; r < count; r++) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: promptFor(id * 100 + r), max_tokens: maxTokens, temperature: 0 }),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    tokens += (await res.json()).usage.completion_tokens;
  }
  return tokens;
}

async function load(concurrency) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const counts = await Promise.all(
    Array.from({ length: concurrency }, (_, i) => client(i, requestsPerClient)),
  );
  const cpu = process.cpuUsage(c0);
  const tokens = counts.reduce((a, b) => a + b, 0);
  return { wall: tokens / ((performance.now() - t0) / 1000), cpu: tokens / ((cpu.user + cpu.system) / 1e6) };
}

await load(2); // warm-up of the batched path
const runs = [['single-request decode (engine)', baseline], ...engineRuns];
for (const c of [1, 4, 8]) runs.push([`http concurrency ${c}`, await load(c)]);
await app.shutdown(1000);
model.engine.dispose();

const notes = {
  model: 'fixtures/mpt-tiny-mosaic (d_model 64, 2 layers, vocab 50432)',
  backend,
  workload: `${requestsPerClient} greedy requests per client, ${maxTokens} new tokens each, max_batch 8; HTTP figures count all generated tokens (prefill included)`,
};
report('serve-load', {
  rows: runs.map(([name, r]) => ({ name, value: r.wall, unit: 'tokens/s' })),
  baseline: 'single-request decode (engine)',
  notes,
});
report('serve-load-cpu', {
  rows: runs.map(([name, r]) => ({ name, value: r.cpu, unit: 'tokens/cpu-s' })),
  baseline: 'single-request decode (engine)',
  notes,
});
