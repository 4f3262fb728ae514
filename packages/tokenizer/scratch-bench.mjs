import tk from 'tokenizers';
import { Tokenizer } from './dist/index.js';
import { generateCorpus } from './dist/testing/corpus.js';
const path = '/work/shared/data/gpt-neox-20b-tokenizer.json';
const hf = tk.Tokenizer.fromFile(path);
const ours = await Tokenizer.fromFile(path);
for (const natural of [true, false]) {
  const docs = generateCorpus({ seed: 7, chars: 1_200_000, natural });
  const mb = docs.reduce((n, d) => n + Buffer.byteLength(d), 0) / 1e6;
  for (let rep = 0; rep < 3; rep++) {
    let t = performance.now(); let n = 0;
    for (const d of docs) n += ours.encode(d).length;
    const ourS = (performance.now() - t) / 1000;
    t = performance.now();
    for (const d of docs) (await hf.encode(d)).getIds();
    const hfS = (performance.now() - t) / 1000;
    t = performance.now();
    await hf.encodeBatch(docs);
    const hfB = (performance.now() - t) / 1000;
    t = performance.now();
    await ours.encodeBatch(docs);
    const ourB = (performance.now() - t) / 1000;
    console.log(natural ? 'natural' : 'edge', mb.toFixed(2), 'MB', docs.length, 'docs; ours', (mb / ourS).toFixed(2), 'MB/s; hf', (mb / hfS).toFixed(2), '; hf batch', (mb / hfB).toFixed(2), '; ours batch', (mb / ourB).toFixed(2), 'tokens', n);
  }
}
