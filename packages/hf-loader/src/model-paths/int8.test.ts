// The golden checkpoint through @mptjs/mpt-model's int8 weight-only path on wasm: logits close to float32 and to
// PyTorch's, and cached greedy decode equal to recompute.
import { selectBackend } from '@mptjs/kernels';
import { MPTModel } from '@mptjs/mpt-model';
import { relativeL2, sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Fixture, loadFixture } from '../testing/model-fixture.js';

const configPath = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
const dir = configPath?.replace(/\/config\.json$/, '');

/** Greedy tokens through the KV cache (prefill, then one decode step per token). */
function greedyCached(model: MPTModel, prompt: number[], steps: number): number[] {
  const cache = model.newCache();
  const out: number[] = [];
  let logits = model.prefill([prompt], cache);
  for (let i = 0; i < steps; i++) {
    const next = tf.tidy(() => tf.argMax(logits, -1).dataSync()[0]!);
    logits.dispose();
    out.push(next);
    if (i < steps - 1) logits = model.decodeStep([next], cache);
  }
  cache.dispose();
  return out;
}

/** Greedy tokens by recomputing the whole sequence each step (no cache). */
function greedyRecompute(model: MPTModel, prompt: number[], steps: number): number[] {
  const seq = [...prompt];
  for (let i = 0; i < steps; i++) {
    const next = tf.tidy(() => {
      const logits = model.forward([seq]);
      return tf.argMax(tf.squeeze(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, -1])), -1).dataSync()[0]!;
    });
    seq.push(next);
  }
  return seq.slice(prompt.length);
}

describe('int8 weight-only quantized model', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { log: false });
  });

  describe.skipIf(!dir)('on the golden fixture mpt-tiny-mosaic', () => {
    let fixture: Fixture;
    beforeAll(async () => {
      fixture = await loadFixture(dir!);
    });

    it('gives logits close to float32, and cached greedy decode equals recompute', async () => {
      await selectBackend('wasm', { log: false });
      const fp32 = MPTModel.fromStateDict(fixture.config, fixture.stateDict);
      const q = MPTModel.fromStateDict(fixture.config, fixture.stateDict, { quantize: 'int8' });
      const ref = fp32.forward(fixture.inputIds);
      const got = q.forward(fixture.inputIds);
      const err = relativeL2(await got.data(), await ref.data());
      const toReference = relativeL2(await got.data(), fixture.logits.data);
      console.log(
        `[wasm int8] logits relative L2 vs fp32 ${err.toExponential(2)}, vs torch ${toReference.toExponential(2)}`,
      );
      expect(err).toBeGreaterThan(0);
      // Measured 1.9e-2: this fixture's weights are random init at d_model 64, where one int8 step per row
      // (max|w| / 127 over only 64 inputs) is ~0.6% noise per matrix, summed over 8 matrices and the head.
      expect(err).toBeLessThan(2.5e-2);
      tf.dispose([ref, got]);
      const prompt = fixture.inputIds[0]!.slice(0, 5);
      const steps = Math.min(8, fixture.config.maxSeqLen - prompt.length);
      const cached = greedyCached(q, prompt, steps);
      expect(cached).toEqual(greedyRecompute(q, prompt, steps));
      fp32.dispose();
      q.dispose();
    });
  });
});
