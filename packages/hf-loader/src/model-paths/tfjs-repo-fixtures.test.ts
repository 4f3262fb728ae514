// Every checkpoint fixture under tools/test-fixtures/fixtures/ (both config dialects, F16/BF16, shards, biases,
// clip_qkv, odd head counts, logit_scale), loaded here and run through @mptjs/mpt-model: our logits must match the
// PyTorch ones, with and without the KV cache.
import { basename, join } from 'node:path';
import { selectBackend } from '@mptjs/kernels';
import { MPTModel } from '@mptjs/mpt-model';
import { FIXTURES_DIR, modelFixtureNames, relativeL2 } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadFixture } from '../testing/model-fixture.js';

const dirs = modelFixtureNames().map((name) => join(FIXTURES_DIR, name));
if (dirs.length === 0) console.warn(`[skip] no checkpoint fixtures under ${FIXTURES_DIR}`);

describe.skipIf(dirs.length === 0).each(dirs.map((d) => [basename(d), d]))('fixture %s', (_name, dir) => {
  it.each([
    'cpu',
    'wasm',
  ] as const)('matches the reference logits on %s (relative L2 < 1e-4)', async (backend) => {
    await selectBackend(backend, { log: false });
    const fixture = await loadFixture(dir);
    const model = MPTModel.fromStateDict(fixture.config, fixture.stateDict);
    const logits = model.forward(fixture.inputIds);
    expect(logits.shape).toEqual(fixture.logits.shape);
    expect(relativeL2(await logits.data(), fixture.logits.data)).toBeLessThan(1e-4);
    // Prefill half, then one token at a time, must give the same logits.
    const t = fixture.inputIds[0]!.length;
    const half = Math.max(1, Math.floor(t / 2));
    const cache = model.newCache();
    const parts = [
      model.forwardWithCache(
        fixture.inputIds.map((r) => r.slice(0, half)),
        cache,
      ),
    ];
    for (let i = half; i < t; i++)
      parts.push(
        model.forwardWithCache(
          fixture.inputIds.map((r) => [r[i]!]),
          cache,
        ),
      );
    const incremental = tf.concat(parts, 1);
    expect(relativeL2(await incremental.data(), await logits.data())).toBeLessThan(1e-5);
    cache.dispose();
    tf.dispose([logits, incremental, ...parts]);
    model.dispose();
  });
});
