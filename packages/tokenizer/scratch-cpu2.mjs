import { Tokenizer } from './dist/index.js';
import { generateCorpus } from './dist/testing/corpus.js';
const tok = await Tokenizer.fromFile('/work/shared/data/gpt-neox-20b-tokenizer.json');
const docs = generateCorpus({ seed: 7, chars: 1_200_000, natural: true });
const mb = docs.reduce((n, d) => n + Buffer.byteLength(d), 0) / 1e6;
const res = [];
for (let r = 0; r < 8; r++) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (const d of docs) tok.encode(d);
  const c = process.cpuUsage(c0); res.push(mb / ((c.user + c.system) / 1e6));
}
console.log('per CPU-second MB/s:', res.map((x) => x.toFixed(1)).join(' '), 'max', Math.max(...res).toFixed(1));
