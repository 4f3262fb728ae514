// Tokenizer throughput on GPT-NeoX-20B: @mptjs/tokenizer's encode (one call per document, one thread) and
// encodeBatch (worker threads) against the Rust binding (`tokenizers`: encode per document, encodeBatch) and the
// pure-JS `@huggingface/tokenizers`, on the same generated corpus in the same run. Ids are checked to agree.
//   node bench/tokenizer/encode.bench.mjs [--mb 1.2] [--repeats 3] [--edge]
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { report, timeit } from '../lib.mjs';

const pkg = new URL('../../packages/tokenizer/', import.meta.url);
const require = createRequire(new URL('package.json', pkg));
const { Tokenizer, closeWorkers } = await import(new URL('dist/index.js', pkg).href);
const { generateCorpus } = await import(new URL('dist/testing/corpus.js', pkg).href);
const rust = require('tokenizers');
const pureJs = require('@huggingface/tokenizers');

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const megabytes = flag('mb', 1.2);
const repeats = flag('repeats', 3);
const edge = args.includes('--edge');

const path = fileURLToPath(new URL('../../../shared/data/gpt-neox-20b-tokenizer.json', import.meta.url));
const tokenizerPath = process.env.MPTJS_SHARED_DIR
  ? `${process.env.MPTJS_SHARED_DIR}/data/gpt-neox-20b-tokenizer.json`
  : path;
if (!existsSync(tokenizerPath)) {
  console.log(`[skip] tokenizer bench: ${tokenizerPath} not found (set MPTJS_SHARED_DIR)`);
  process.exit(0);
}

const docs = generateCorpus({ seed: 7, chars: megabytes * 1e6, natural: !edge });
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
const mb = bytes / 1e6;

const ours = await Tokenizer.fromFile(tokenizerPath);
const theirs = rust.Tokenizer.fromFile(tokenizerPath);
const js = new pureJs.Tokenizer(JSON.parse(readFileSync(tokenizerPath, 'utf8')), {});

// Same ids from all three before timing anything.
const reference = (await theirs.encodeBatch(docs)).map((e) => e.getIds());
const tokens = reference.reduce((n, ids) => n + ids.length, 0);
const same = (list) =>
  list.every((ids, i) => ids.length === reference[i].length && ids.every((x, k) => x === reference[i][k]));
const oursIds = docs.map((d) => ours.encode(d));
const batchIds = await ours.encodeBatch(docs);
const jsIds = docs.map((d) => js.encode(d).ids);
if (!same(oursIds) || !same(batchIds)) throw new Error('@mptjs/tokenizer ids differ from the Rust binding');

const cases = [
  [
    'rust tokenizers: encode per doc',
    async () => {
      for (const d of docs) (await theirs.encode(d)).getIds();
    },
  ],
  [
    'rust tokenizers: encodeBatch',
    async () => {
      for (const e of await theirs.encodeBatch(docs)) e.getIds();
    },
  ],
  [
    '@huggingface/tokenizers (JS): encode',
    () => {
      for (const d of docs) js.encode(d);
    },
  ],
  [
    '@mptjs/tokenizer: encode (1 thread)',
    () => {
      for (const d of docs) ours.encode(d);
    },
  ],
  ['@mptjs/tokenizer: encodeBatch', () => ours.encodeBatch(docs)],
  // The Rust binding always computes offsets; this is the like-for-like row for that.
  [
    '@mptjs/tokenizer: encode withOffsets',
    () => {
      for (const d of docs) ours.encode(d, { withOffsets: true });
    },
  ],
];
const rows = [];
for (const [name, fn] of cases) {
  // Two warm-up runs outside the CPU count: worker pool start, JIT, and each thread's word cache.
  await fn();
  await fn();
  const cpu0 = process.cpuUsage();
  const t = await timeit(fn, { repeats, warmup: 0 });
  const cpu = process.cpuUsage(cpu0);
  // CPU seconds of the whole process (all its threads) per run: on a shared machine this is steadier than wall time.
  const cpuPerRun = (cpu.user + cpu.system) / 1e6 / t.runs;
  rows.push({
    name,
    value: mb / t.median_s,
    unit: 'MB/s',
    tokens_per_s: Math.round(tokens / t.median_s),
    median_s: t.median_s,
    mb_per_cpu_s: mb / cpuPerRun,
  });
}
await closeWorkers(ours);

const get = (prefix) => rows.find((r) => r.name.startsWith(prefix)).value;
report('tokenizer-encode', {
  rows,
  baseline: 'rust tokenizers: encode per doc',
  notes: {
    corpus: `${docs.length} docs, ${mb.toFixed(2)} MB UTF-8, ${tokens} tokens (${edge ? 'edge-case' : 'natural'} mix, seed 7)`,
    threads: `encodeBatch workers: ${Math.min(8, availableParallelism())}`,
    'ids agree with rust': `@mptjs encode ${same(oursIds)}, encodeBatch ${same(batchIds)}, @huggingface/tokenizers ${same(jsIds)}`,
    'tokens/s': rows.map((r) => `${r.name} ${r.tokens_per_s}`).join('; '),
    'MB per CPU-second (all threads)': rows.map((r) => `${r.name} ${r.mb_per_cpu_s.toFixed(2)}`).join('; '),
    'load average (1 min) at start': os.loadavg()[0].toFixed(1),
    'encode / rust encode': (
      get('@mptjs/tokenizer: encode') / get('rust tokenizers: encode per doc')
    ).toFixed(2),
    'encodeBatch / rust encodeBatch': (
      get('@mptjs/tokenizer: encodeBatch') / get('rust tokenizers: encodeBatch')
    ).toFixed(2),
  },
});
