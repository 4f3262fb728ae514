// Runnable tour of @mptjs/tokenizer: node examples/quickstart.mjs [path/to/tokenizer.json]
// (after `pnpm build`; defaults to the shared GPT-NeoX-20B tokenizer.json).
import { closeWorkers, Tokenizer, trainBpe } from '@mptjs/tokenizer';

const path =
  process.argv[2] ?? new URL('../../../../shared/data/gpt-neox-20b-tokenizer.json', import.meta.url);
const tok = await Tokenizer.fromFile(path);

const ids = tok.encode('Hello world');
console.log(ids); // [ 12092, 1533 ]
console.log(tok.decode(ids)); // Hello world

const { tokens, offsets } = tok.encode('naïve  café', { withOffsets: true });
console.log(tokens, offsets); // offsets in code points, as HF reports them

const eos = tok.tokenToId('<|endoftext|>'); // 0
console.log(tok.decode([12092, eos, 1533], { skipSpecialTokens: true })); // Hello world

// Serving: text comes out only when it forms whole characters.
const stream = tok.decodeStream();
for (const id of tok.encode('日本語 ☃')) process.stdout.write(stream.step(id) ?? '');
process.stdout.write(`${stream.flush()}\n`);

// Many documents: spread over worker threads.
const batch = await tok.encodeBatch(
  Array.from({ length: 2000 }, (_, i) => `document ${i}: ${'lorem ipsum '.repeat(20)}`),
);
console.log(batch.length, batch[0].length);
await closeWorkers(tok);

// Train a small byte-level BPE with GPT-NeoX's normalizer, pre-tokenizer and decoder.
const json = await trainBpe({
  texts: ['low lower lowest', 'new newer newest'],
  vocabSize: 300,
  specialTokens: ['<|endoftext|>'],
});
const small = Tokenizer.fromJSON(json);
console.log(small.encode('lowest newest'), small.vocabSize);
