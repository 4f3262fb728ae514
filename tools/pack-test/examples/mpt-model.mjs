// Mirrors packages/mpt-model/README.md's example against the installed tarball.
import assert from 'node:assert/strict';
import { selectBackend } from '@mptjs/alibi-attention';
import { generate, MPTModel, parseMptConfig } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';

await selectBackend('wasm', { log: false });
const config = parseMptConfig({
  model_type: 'mpt',
  d_model: 64,
  n_heads: 4,
  n_layers: 2,
  max_seq_len: 128,
  vocab_size: 1000,
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true },
});
const model = MPTModel.init(config, 42);
const logits = model.forward([[1, 2, 3, 4]]);
const loss = model.loss([[1, 2, 3]], [[2, 3, 4]]).dataSync()[0];
console.log(logits.shape, loss);
assert.deepEqual(logits.shape, [1, 4, 1000]);
assert.ok(loss > 5 && loss < 9, `random-init loss ${loss} should be near ln(1000) = 6.9`);

const seen = [];
const result = await generate(model, [1, 2, 3], {
  maxNewTokens: 8,
  temperature: 0.8,
  topK: 50,
  topP: 0.95,
  seed: 7,
  onToken: ({ token, index }) => seen.push([index, token]),
});
console.log(result.tokens, result.finishReason);
assert.equal(result.tokens.length, 8);
assert.deepEqual(
  seen.map(([, t]) => t),
  result.tokens,
);
const again = await generate(model, [1, 2, 3], {
  maxNewTokens: 8,
  temperature: 0.8,
  topK: 50,
  topP: 0.95,
  seed: 7,
});
assert.deepEqual(again.tokens, result.tokens, 'same seed, same tokens');

// Greedy generation equals argmax of the full forward, step by step.
const greedy = await generate(model, [1, 2, 3], { maxNewTokens: 4, greedy: true });
const ids = [1, 2, 3];
for (let i = 0; i < 4; i++) {
  const l = model.forward([ids]);
  ids.push(tf.argMax(l.slice([0, ids.length - 1, 0], [1, 1, 1000]).reshape([1000])).dataSync()[0]);
}
assert.deepEqual(greedy.tokens, ids.slice(3));

const units = model.units();
assert.equal(units.length, 4);
const ctx = { slopes: model.slopes, pastLength: 0, keyMask: null };
let x = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
for (const unit of units) x = unit.forward(model.get, x, ctx);
console.log('units', units.map((u) => u.name).join(' '), 'out', x.shape);
console.log('ok mpt-model');
