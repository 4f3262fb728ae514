import tk from 'tokenizers';
import { Tokenizer, closeWorkers } from './dist/index.js';
import { generateCorpus } from './dist/testing/corpus.js';
const path = '/work/shared/data/gpt-neox-20b-tokenizer.json';
const tok = await Tokenizer.fromFile(path);
const hf = tk.Tokenizer.fromFile(path);
const docs = generateCorpus({ seed: 7, chars: 1_200_000, natural: true });
const mb = docs.reduce((n, d) => n + Buffer.byteLength(d), 0) / 1e6;
await tok.encodeBatch(docs, { threads: 2 });
const measure = async (name, fn) => {
  await fn();
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000; const c = process.cpuUsage(c0); const cpu = (c.user + c.system) / 1e6;
  console.log(name.padEnd(22), 'wall', (mb / wall).toFixed(2), 'MB/s;', 'per CPU-second', (mb / cpu).toFixed(2), 'MB/s; cpu/wall', (cpu / wall).toFixed(2));
};
for (let r = 0; r < 2; r++) {
  await measure('ours encode', () => { for (const d of docs) tok.encode(d); });
  await measure('ours encodeBatch(2)', () => tok.encodeBatch(docs, { threads: 2 }));
  await measure('rust encode per doc', async () => { for (const d of docs) (await hf.encode(d)).getIds(); });
  await measure('rust encodeBatch', async () => { for (const e of await hf.encodeBatch(docs)) e.getIds(); });
}
await closeWorkers(tok);
