import { Tokenizer } from './dist/index.js';
import { generateCorpus } from './dist/testing/corpus.js';
const ours = await Tokenizer.fromFile('/work/shared/data/gpt-neox-20b-tokenizer.json');
const docs = generateCorpus({ seed: 7, chars: 1_200_000, natural: true });
const mb = docs.reduce((n, d) => n + Buffer.byteLength(d), 0) / 1e6;
for (let rep = 0; rep < 8; rep++) {
  const t = performance.now();
  for (const d of docs) ours.encode(d);
  console.log((mb / ((performance.now() - t) / 1000)).toFixed(2), 'MB/s');
}
// pieces: regex only
const re = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`, 'gu');
let t = performance.now(); let c = 0;
for (const d of docs) { re.lastIndex = 0; for (let m = re.exec(d); m; m = re.exec(d)) c++; }
console.log('regex only', (mb / ((performance.now() - t) / 1000)).toFixed(2), 'MB/s', c);
t = performance.now();
for (const d of docs) d.normalize('NFC');
console.log('nfc only', (mb / ((performance.now() - t) / 1000)).toFixed(2), 'MB/s');
