// Mirrors packages/tokenizer/README.md's example against the installed tarball.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { closeWorkers, Tokenizer, trainBpe } from '@mptjs/tokenizer';

const tok = await Tokenizer.fromFile(
  join(process.env.MPTJS_SHARED_DIR ?? '../shared', 'data/gpt-neox-20b-tokenizer.json'),
);

assert.deepEqual(tok.encode('Hello world'), [12092, 1533]);
assert.equal(tok.decode([12092, 1533]), 'Hello world');
assert.deepEqual(tok.encode('a  b'), [66, 50276, 67]);
assert.deepEqual(tok.encode('def f():\n    return 1'), [1545, 269, 14850, 187, 50274, 2309, 337]);
const enc = tok.encode('naïve  café', { withOffsets: true });
assert.deepEqual(enc.offsets.slice(0, 2), [
  [0, 2],
  [2, 5],
]);
assert.equal(tok.tokenToId('<|endoftext|>'), 0);
assert.equal(tok.decode([12092, 0, 1533], { skipSpecialTokens: true }), 'Hello world');
assert.equal(tok.vocabSize, 50277);

const stream = tok.decodeStream();
let text = '';
for (const id of tok.encode('日本語 ☃')) text += stream.step(id) ?? '';
text += stream.flush();
assert.equal(text, '日本語 ☃');

const docs = Array.from({ length: 300 }, (_, i) => `document ${i}: ${'lorem ipsum '.repeat(20)}`);
const batch = await tok.encodeBatch(docs);
assert.deepEqual(batch[7], tok.encode(docs[7]));
await closeWorkers(tok);

const json = await trainBpe({
  texts: ['low lower lowest', 'new newer newest'],
  vocabSize: 300,
  specialTokens: ['<|endoftext|>'],
});
const small = Tokenizer.fromJSON(json);
assert.equal(small.decode(small.encode('lowest newest')), 'lowest newest');
console.log('encode', tok.encode('Hello world'), 'stream', text, 'trained vocab', small.vocabSize);
console.log('ok tokenizer');
