import { selectBackend } from '@mptjs/kernels';
import { maxAbsDiff, randomTensor } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  alibiBias,
  alibiSlopes,
  attentionProbabilities,
  attentionReference,
  MASK_VALUE,
  resolveAttentionOptions,
  visibleKeys,
} from './index.js';

/** The masked softmax written the long way: ALiBi added, then the mask broadcast over the batch by `where`. */
function broadcastMaskProbabilities(
  q: tf.Tensor,
  k: tf.Tensor,
  slopes: Float32Array | null,
  queryOffset: number,
) {
  const tq = q.shape[2]!;
  const tk = k.shape[2]!;
  let scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(q.shape[3]!));
  if (slopes) scores = tf.add(scores, alibiBias(slopes, tq, tk, queryOffset));
  const visible = visibleKeys(tq, tk, { causal: true, queryOffset })!;
  return tf.softmax(
    tf.where(tf.broadcastTo(visible, scores.shape), scores, tf.fill(scores.shape, MASK_VALUE)),
  );
}

describe('causal attention through one additive bias', () => {
  it('gives bit-identical probabilities and gradients to broadcasting the mask, on cpu and wasm', async () => {
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend, { log: false });
      for (const [tq, tk, withSlopes] of [
        [17, 17, true],
        [5, 12, true],
        [9, 9, false],
      ] as const) {
        const q = randomTensor([2, 3, tq, 8], 1, 3);
        const k = randomTensor([2, 3, tk, 8], 2, 3);
        const v = randomTensor([2, 3, tk, 8], 3);
        const slopes = withSlopes ? alibiSlopes(3) : null;
        const o = resolveAttentionOptions(q, k, v, { slopes });
        const fast = tf.tidy(() => attentionProbabilities(q, k, o));
        const slow = tf.tidy(() => broadcastMaskProbabilities(q, k, slopes, tk - tq));
        expect(maxAbsDiff(fast.dataSync(), slow.dataSync())).toBe(0);
        const gradFast = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(tf.square(attentionReference(a, b, c, { slopes }))),
        )([q, k, v]);
        const gradSlow = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(tf.square(tf.matMul(broadcastMaskProbabilities(a, b, slopes, tk - tq), c))),
        )([q, k, v]);
        gradFast.forEach((g, i) => {
          expect(maxAbsDiff(g.dataSync(), gradSlow[i]!.dataSync())).toBe(0);
        });
        tf.dispose([q, k, v, fast, slow, ...gradFast, ...gradSlow]);
      }
    }
  });
});
