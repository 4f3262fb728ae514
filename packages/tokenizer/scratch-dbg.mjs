import hf from 'tokenizers';
import { Tokenizer, trainBpe } from './dist/index.js';
import { generateCorpus } from './dist/testing/corpus.js';
const base = await trainBpe({ texts: ['hello world 123 foo bar, baz. The quick brown fox'], vocabSize: 300, specialTokens: ['<s>'] });
const configs = {
  prefix: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  digits: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }] },
  digits2: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: false }, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false }] },
};
const texts = generateCorpus({ seed: 99, chars: 120_000 }).slice(0, 120);
for (const [name, pre] of Object.entries(configs)) {
  const j = structuredClone(base); j.pre_tokenizer = pre;
  if (name === 'digits') j.post_processor = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true };
  const s = JSON.stringify(j);
  const ours = Tokenizer.fromJSON(s), theirs = hf.Tokenizer.fromString(s);
  for (const t of texts) {
    const e = await theirs.encode(t); const o = ours.encode(t, { withOffsets: true });
    const eo = e.getOffsets();
    const k = o.offsets.findIndex((x, i) => x[0] !== eo[i][0] || x[1] !== eo[i][1]);
    if (k >= 0 || JSON.stringify(o.ids) !== JSON.stringify(e.getIds())) { console.log(name, k, o.tokens.slice(k - 2, k + 3), e.getTokens().slice(k-2,k+3), o.offsets.slice(k - 2, k + 3), eo.slice(k - 2, k + 3)); const cps=[...t]; console.log(JSON.stringify(cps.slice(eo[k][0]-5, eo[k][1]+5).join(''))); break; }
  }
}
{
const j = structuredClone(base); j.pre_tokenizer = configs.digits2; const s = JSON.stringify(j);
const ours = Tokenizer.fromJSON(s), theirs = hf.Tokenizer.fromString(s);
for (const t of ['°C', 'a°C', '15°C', 'x 5°']) { const e = await theirs.encode(t); const o = ours.encode(t, { withOffsets: true }); console.log(JSON.stringify(t), o.tokens, JSON.stringify(o.offsets), JSON.stringify(e.getOffsets())); }
}
