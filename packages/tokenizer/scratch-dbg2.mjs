import hf from 'tokenizers';
import { Tokenizer, trainBpe } from './dist/index.js';
import { generateCorpus } from './dist/testing/corpus.js';
const base = await trainBpe({ texts: ['hello world 123 foo bar, baz. The quick brown fox'], vocabSize: 300, specialTokens: ['<s>'] });
const j = structuredClone(base); j.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: false }, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false }] };
const s = JSON.stringify(j);
const ours = Tokenizer.fromJSON(s), theirs = hf.Tokenizer.fromString(s);
const bad = async (t) => { const e = await theirs.encode(t); const o = ours.encode(t, { withOffsets: true }); return JSON.stringify(o.offsets) !== JSON.stringify(e.getOffsets()); };
const texts = generateCorpus({ seed: 99, chars: 120_000 }).slice(0, 120);
let t = null; for (const x of texts) if (await bad(x)) { t = x; break; }
let cps = [...t];
// shrink from both ends
let changed = true;
while (changed) { changed = false;
  for (const [a, b] of [[1, 0], [0, 1]]) { while (cps.length > 1 && await bad(cps.slice(a, cps.length - b).join(''))) { cps = cps.slice(a, cps.length - b); changed = true; } }
}
console.log(JSON.stringify(cps.join('')), cps.map(c => c.codePointAt(0).toString(16)));
// ddmin-style: try removing chunks
let chunk = Math.floor(cps.length / 2);
while (chunk >= 1) {
  let i = 0; let progressed = false;
  while (i < cps.length) { const cand = cps.slice(0, i).concat(cps.slice(i + chunk)); if (cand.length && await bad(cand.join(''))) { cps = cand; progressed = true; } else i += chunk; }
  if (!progressed) chunk = Math.floor(chunk / 2);
}
const t2 = cps.join('');
console.log('MIN', JSON.stringify(t2), cps.map(c => c.codePointAt(0).toString(16)));
const e = await theirs.encode(t2); const o = ours.encode(t2, { withOffsets: true });
console.log(o.tokens, JSON.stringify(o.offsets), JSON.stringify(e.getOffsets()), e.getTokens());
