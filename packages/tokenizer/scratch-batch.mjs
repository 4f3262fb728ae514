import { Tokenizer, closeWorkers } from './dist/index.js';
import { generateCorpus } from './dist/testing/corpus.js';
const tok = await Tokenizer.fromFile('/work/shared/data/gpt-neox-20b-tokenizer.json');
const docs = generateCorpus({ seed: 7, chars: 1_200_000, natural: true });
const mb = docs.reduce((n, d) => n + Buffer.byteLength(d), 0) / 1e6;
await tok.encodeBatch(docs, { threads: 2 });
for (let r = 0; r < 4; r++) {
  let t = performance.now(); for (const d of docs) tok.encode(d); const a = mb / ((performance.now() - t) / 1000);
  t = performance.now(); await tok.encodeBatch(docs, { threads: 2 }); const b = mb / ((performance.now() - t) / 1000);
  t = performance.now(); await tok.encodeBatch(docs, { threads: 3 }); const c = mb / ((performance.now() - t) / 1000);
  console.log('encode', a.toFixed(2), 'batch2', b.toFixed(2), 'batch3', c.toFixed(2));
}
await closeWorkers(tok);
