// Data-mixer throughput on the bundled RedPajama sample corpus with the GPT-NeoX-20B tokenizer (@mptjs/tokenizer):
// tokens/s of the tokenizer alone (one encode call per document), of the mixer on the calling thread, and of the
// mixer with worker-thread prefetch, all in the same run. A second pair adds a simulated training step (the main
// thread busy for a fixed time per batch) to show how much of the data work the worker hides.
// First, without the tokenizer: MDS read throughput, drawing the RedPajama mix from a prepared zstd MDS dataset
// of `tokens` (what `data prepare` writes), on the calling thread and (with the tokenizer file present) on the
// worker; `--mds-only` stops after it.
//   node bench/data-mixer/throughput.bench.mjs [--batches 60] [--warmup 30] [--batch 8] [--seq 2048] [--repeats 3] [--step-ms N]
//     [--mds-samples 2048] [--mds-only]
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, timeit } from '../lib.mjs';

const pkg = new URL('../../packages/data-mixer/', import.meta.url);
const { DataMixer, MdsWriter, REDPAJAMA_MIX, loadTokenizer, readMdsIndex, readMdsShard } = await import(
  new URL('dist/index.js', pkg).href
);

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const batches = flag('batches', 60);
const warmup = flag('warmup', 30);
const batchSize = flag('batch', 8);
const seqLen = flag('seq', 2048);
const repeats = flag('repeats', 3);

function configFor(streams) {
  return { streams, maxSeqLen: seqLen, shuffle: true, shuffleSeed: 17, shuffleBlockSize: 4096 };
}

const shared = process.env.MPTJS_SHARED_DIR ?? fileURLToPath(new URL('../../../shared', import.meta.url));
const tokenizerPath = join(shared, 'data/gpt-neox-20b-tokenizer.json');
const haveTokenizer = existsSync(tokenizerPath);

// MDS read: one zstd MDS dataset of `tokens` per RedPajama stream, samples in proportion to the mix, token ids
// drawn uniformly from the GPT-NeoX vocabulary (a pessimistic case for zstd: real text compresses better).
{
  const mdsSamples = flag('mds-samples', 2048);
  const root = mkdtempSync(join(tmpdir(), 'data-mixer-mds-bench-'));
  try {
    let x = 1;
    let rawBytes = 0;
    let zipBytes = 0;
    let written = 0;
    const streams = [];
    for (const [name, proportion] of Object.entries(REDPAJAMA_MIX)) {
      const writer = new MdsWriter(join(root, name), { columns: { tokens: 'ndarray:int32' } });
      // 25% more than the run draws: no stream runs out and re-reads its shards, as in one epoch of a real run.
      for (let i = 0; i < Math.ceil(1.25 * proportion * mdsSamples); i++) {
        const t = new Int32Array(seqLen);
        for (let j = 0; j < seqLen; j++) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          t[j] = x % 50277;
        }
        await writer.write({ tokens: t });
        written++;
      }
      for (const s of (await writer.finish()).shards) {
        rawBytes += s.raw_data.bytes;
        zipBytes += s.zip_data.bytes;
      }
      streams.push({ name, local: join(root, name), proportion });
    }
    const mdsConfig = { ...configFor(streams), shuffleBlockSize: 4096 };
    const tokenizer = haveTokenizer
      ? { path: tokenizerPath, library: 'mptjs' } // never loaded: token records are not tokenised
      : { tokenizer: { encode: () => [] }, eosId: 0 };
    // Timed from open to the last batch, worker start included.
    const mdsBatches = Math.floor(mdsSamples / batchSize);
    const mdsTokens = mdsBatches * batchSize * seqLen;
    const readAll = async (prefetch) => {
      const t0 = performance.now();
      const mixer = await DataMixer.open({ config: mdsConfig, tokenizer });
      let n = 0;
      for await (const b of mixer.batches({ batchSize, prefetch, limit: mdsBatches })) n += b.tokens.length;
      if (n !== mdsTokens) throw new Error(`drew ${n} tokens, expected ${mdsTokens}`);
      return (performance.now() - t0) / 1000;
    };
    await readAll(0); // warm-up (JIT)
    const single = await median(() => readAll(0));
    const rows = [{ name: 'MDS read, calling thread', value: mdsTokens / single.median_s, unit: 'tokens/s' }];
    if (haveTokenizer) {
      const worker = await median(() => readAll(4));
      rows.push({
        name: 'MDS read, worker prefetch 4',
        value: mdsTokens / worker.median_s,
        unit: 'tokens/s',
      });
    }
    // Reading and decompressing every shard once (fzstd), per token stored: the part of the read that is zstd.
    const shardsOnly = await timeit(
      async () => {
        for (const { local } of streams) {
          for (const shard of (await readMdsIndex(local)).shards) await readMdsShard(local, shard);
        }
      },
      { repeats, warmup: 1 },
    );
    rows.push({
      name: 'shard read + zstd decompress only',
      value: (written * seqLen) / shardsOnly.median_s,
      unit: 'tokens/s',
    });
    report('data-mixer-mds-read', {
      baseline: 'MDS read, calling thread',
      rows,
      notes: {
        dataset: `7 streams, ${written} samples x ${seqLen} tokens in all, ${(rawBytes / 2 ** 20).toFixed(1)} MiB raw, ${(zipBytes / 2 ** 20).toFixed(1)} MiB zstd`,
        run: `${mdsBatches} batches x ${batchSize} x ${seqLen} = ${mdsTokens} tokens drawn from the mix (open and worker start included), median of ${repeats} after a warm-up run`,
      },
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
if (args.includes('--mds-only')) process.exit(0);

if (!haveTokenizer) {
  console.log(`[skip] data-mixer bench: ${tokenizerPath} not found (set MPTJS_SHARED_DIR)`);
  process.exit(0);
}
const sampleDir = fileURLToPath(new URL('../../data/sample/', import.meta.url));
const spec = { path: tokenizerPath, library: 'mptjs' };
const config = configFor(
  Object.entries(REDPAJAMA_MIX).map(([name, proportion]) => ({
    name,
    local: join(sampleDir, name),
    proportion,
  })),
);
const tokensPerRun = batches * batchSize * seqLen;

// Tokenizer alone over the whole corpus.
const texts = [];
for (const name of Object.keys(REDPAJAMA_MIX)) {
  for (const file of readdirSync(join(sampleDir, name)).filter((f) => f.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(sampleDir, name, file), 'utf8').split('\n'))
      if (line) texts.push(JSON.parse(line).text);
  }
}
// A fresh tokenizer: the first pass runs with a cold word cache, later passes with a warm one.
const { tokenizer } = await loadTokenizer(spec);
let corpusTokens = 0;
const encodeAll = () => {
  corpusTokens = 0;
  for (const t of texts) corpusTokens += tokenizer.encode(t).length;
};
const t0 = performance.now();
encodeAll();
const cold = (performance.now() - t0) / 1000;
const tokCpu0 = process.cpuUsage();
const tok = await timeit(encodeAll, { repeats, warmup: 0 });
const tokCpuUsage = process.cpuUsage(tokCpu0);
const tokCpu = (tokCpuUsage.user + tokCpuUsage.system) / 1e6 / repeats;

// Steady state: the mixer is opened and `warmup` batches drawn (tokenizer load, worker start, JIT warm-up, a
// first pass over the corpus) before timing.
// Each run loads its own tokenizer (on the calling thread or in the worker), so word caches start equal.
async function drain(prefetch, stepMs = 0) {
  const mixer = await DataMixer.open({ config, tokenizer: spec });
  const it = mixer.batches({ batchSize, prefetch, limit: batches + warmup });
  for (let i = 0; i < warmup; i++) await it.next();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  for await (const b of it) {
    n += b.tokens.length;
    if (stepMs > 0) {
      const until = performance.now() + stepMs;
      while (performance.now() < until); // the training step: this thread is busy
    }
  }
  if (n !== tokensPerRun) throw new Error(`drew ${n} tokens, expected ${tokensPerRun}`);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  cpuSeconds.push((cpu.user + cpu.system) / 1e6);
  return wall;
}
// Process CPU time (all threads) of each timed run: less sensitive than wall time to other load on the machine.
let cpuSeconds = [];
async function medianCpu(fn) {
  cpuSeconds = [];
  const wall = await median(fn);
  const sorted = [...cpuSeconds].sort((a, b) => a - b);
  return { ...wall, cpu_s: sorted[Math.floor(sorted.length / 2)] };
}

async function median(fn) {
  const times = [];
  for (let i = 0; i < repeats; i++) times.push(await fn());
  times.sort((a, b) => a - b);
  return { median_s: times[Math.floor(times.length / 2)] };
}

const single = await medianCpu(() => drain(0));
const worker = await medianCpu(() => drain(4));
// Simulated step as long as the data work per batch on one thread: the worker can at best halve the time.
const stepMs = flag('step-ms', Math.round((single.median_s / batches) * 1000));
const singleStep = await median(() => drain(0, stepMs));
const workerStep = await median(() => drain(4, stepMs));
const computeOnly = (batches * stepMs) / 1000;

report('data-mixer-throughput', {
  baseline: 'tokenizer only (encode per doc)',
  rows: [
    { name: 'tokenizer only (encode per doc)', value: corpusTokens / tok.median_s, unit: 'tokens/s' },
    { name: 'tokenizer only, first pass (cold cache)', value: corpusTokens / cold, unit: 'tokens/s' },
    { name: 'mixer, calling thread', value: tokensPerRun / single.median_s, unit: 'tokens/s' },
    { name: 'mixer, worker prefetch 4', value: tokensPerRun / worker.median_s, unit: 'tokens/s' },
    {
      name: `+${stepMs} ms step, calling thread`,
      value: tokensPerRun / singleStep.median_s,
      unit: 'tokens/s',
    },
    {
      name: `+${stepMs} ms step, worker prefetch 4`,
      value: tokensPerRun / workerStep.median_s,
      unit: 'tokens/s',
    },
    { name: `step only (upper bound)`, value: tokensPerRun / computeOnly, unit: 'tokens/s' },
  ],
  notes: {
    corpus: `${texts.length} documents, ${corpusTokens} tokens (data/sample)`,
    run: `${batches} batches x ${batchSize} x ${seqLen} tokens = ${tokensPerRun} tokens per run after ${warmup} warm-up batches, median of ${repeats}`,
    'tokens per CPU-second, tokenizer only (warm)': Math.round(corpusTokens / tokCpu),
    'tokens per CPU-second, mixer on the calling thread': Math.round(tokensPerRun / single.cpu_s),
    'tokens per CPU-second, mixer with worker (both threads)': Math.round(tokensPerRun / worker.cpu_s),
    'data stall with step, calling thread': `${(((singleStep.median_s - computeOnly) / singleStep.median_s) * 100).toFixed(1)}% of wall time`,
    'data stall with step, worker': `${(((workerStep.median_s - computeOnly) / workerStep.median_s) * 100).toFixed(1)}% of wall time`,
  },
});
