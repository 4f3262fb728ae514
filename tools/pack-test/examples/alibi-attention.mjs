// Mirrors packages/alibi-attention/README.md's example against the installed tarball.
import assert from 'node:assert/strict';
import { alibiAttention, alibiSlopes, KVCache, selectBackend } from '@mptjs/alibi-attention';
import * as tf from '@tensorflow/tfjs-core';

const info = await selectBackend('auto');
console.log('backend', tf.getBackend(), info?.backend ?? '');
const [B, H, T, Dh] = [1, 4, 6, 8];
const q = tf.randomNormal([B, H, T, Dh], 0, 1, 'float32', 1);
const k = tf.randomNormal([B, H, T, Dh], 0, 1, 'float32', 2);
const v = tf.randomNormal([B, H, T, Dh], 0, 1, 'float32', 3);
const slopes = alibiSlopes(H, 8, 'mpt');
assert.deepEqual([...slopes], [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8]);
assert.deepEqual([...alibiSlopes(16, 8, 'mpt')], [...alibiSlopes(16, 8, 'mosaic_gpt')]);

const full = alibiAttention(q, k, v, { slopes });
const cache = new KVCache(1);
const steps = [];
for (let t = 0; t < T; t++) {
  const at = (x) => tf.slice(x, [0, 0, t, 0], [B, H, 1, Dh]);
  const { k: keys, v: values } = cache.append(0, at(k), at(v));
  steps.push(alibiAttention(at(q), keys, values, { slopes }));
}
const incremental = tf.concat(steps, 2);
const diff = tf.max(tf.abs(tf.sub(full, incremental))).dataSync()[0];
console.log('full vs incremental max |diff|', diff);
assert.ok(diff < 1e-5, `incremental attention differs by ${diff}`);
cache.dispose();
console.log('ok alibi-attention');
