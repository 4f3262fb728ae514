// The golden checkpoint through @mptjs/mpt-model's weight-offload path on wasm: the same logits as the resident
// model, PyTorch's logits, and the reference greedy continuation with nothing left behind.
import { readFileSync } from 'node:fs';
import { selectBackend } from '@mptjs/kernels';
import { generate, MPTModel, weightBytes } from '@mptjs/mpt-model';
import { relativeL2, sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadFixture } from '../testing/model-fixture.js';

const values = async (t: tf.Tensor) => Array.from((await t.data()) as Float32Array);

const configPath = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
const dir = configPath?.replace(/\/config\.json$/, '');

describe.skipIf(!dir)('golden fixture through the offloaded path (wasm)', () => {
  it('matches the non-offloaded logits exactly and the reference continuation', async () => {
    await selectBackend('wasm', { log: false });
    const fixture = await loadFixture(dir!);
    const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as {
      greedy: { prompt: number[]; continuation: number[] };
    };
    const { fixed, block } = weightBytes(fixture.config);
    const plain = MPTModel.fromStateDict(fixture.config, fixture.stateDict);
    const offloaded = MPTModel.fromStateDict(fixture.config, fixture.stateDict, {
      offload: { maxResidentBytes: fixed + block },
    });
    expect(offloaded.weightOffload!.residentBlocks).toBe(0);
    const a = plain.forward(fixture.inputIds);
    const b = offloaded.forward(fixture.inputIds);
    const got = await values(b);
    expect(got).toEqual(await values(a));
    expect(relativeL2(got, fixture.logits.data)).toBeLessThan(1e-4);
    tf.dispose([a, b]);
    const before = tf.memory();
    const result = await generate(offloaded, expected.greedy.prompt, {
      maxNewTokens: expected.greedy.continuation.length,
    });
    expect(result.tokens).toEqual(expected.greedy.continuation);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    plain.dispose();
    offloaded.dispose();
  });
});
