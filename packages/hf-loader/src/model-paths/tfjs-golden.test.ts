// The golden MosaicGPT checkpoint (pytorch_model.bin) loaded here and run through @mptjs/mpt-model on cpu, wasm
// and webgpu: PyTorch's logits, loss, gradient norms and greedy continuation.
import { readFileSync } from 'node:fs';
import { selectBackend } from '@mptjs/kernels';
import { generate, MPTModel } from '@mptjs/mpt-model';
import { relativeL2, sharedFile, TINY_MOSAIC_DIR, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { toMptName } from '../names.js';
import { type Fixture, loadFixture } from '../testing/model-fixture.js';

const configPath = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
const dir = configPath?.replace(/\/config\.json$/, '');

interface ExpectedJson {
  loss: number;
  grad_norms: Record<string, number>;
  greedy: { prompt: number[]; continuation: number[] };
}

describe.skipIf(!dir)('golden fixture mpt-tiny-mosaic (MosaicGPT dialect, pytorch_model.bin)', () => {
  let fixture: Fixture;
  let expected: ExpectedJson;

  beforeAll(async () => {
    fixture = await loadFixture(dir!);
    expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as ExpectedJson;
  });

  describe.each(['cpu', 'wasm'] as const)('on %s', (backend) => {
    let model: MPTModel;
    beforeAll(async () => {
      await selectBackend(backend, { log: false });
      model = MPTModel.fromStateDict(fixture.config, fixture.stateDict);
    });

    it('reproduces the reference logits (relative L2 < 1e-4)', async () => {
      const logits = model.forward(fixture.inputIds);
      expect(logits.shape).toEqual(fixture.logits.shape);
      const err = relativeL2(await logits.data(), fixture.logits.data);
      console.log(`[${backend}] logits relative L2 error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      logits.dispose();
    });

    it('reproduces the loss and the per-parameter gradient norms', async () => {
      const ids = fixture.inputIds;
      const inputs = ids.map((r) => r.slice(0, -1));
      const targets = ids.map((r) => r.slice(1));
      const vars = [...model.params.values()];
      expect(Object.keys(expected.grad_norms)).toHaveLength(vars.length);
      const { value, grads } = tf.variableGrads(() => model.loss(inputs, targets), vars);
      const loss = (await value.data())[0]!;
      expect(Math.abs(loss - expected.loss) / expected.loss).toBeLessThan(1e-4);
      for (const [name, want] of Object.entries(expected.grad_norms)) {
        const mpt = toMptName(name) ?? name;
        const g = grads[model.params.get(mpt)?.name ?? mpt];
        if (!g) throw new Error(`no gradient for ${mpt}`);
        const norm = (await tf.norm(g).data())[0]!;
        expect(Math.abs(norm - want) / want, `grad norm of ${mpt}: ${norm} vs ${want}`).toBeLessThan(1e-3);
      }
      tf.dispose([value, ...Object.values(grads)]);
    });

    it('reproduces the greedy continuation through the KV cache', async () => {
      const result = await generate(model, expected.greedy.prompt, {
        maxNewTokens: expected.greedy.continuation.length,
      });
      expect(result.tokens).toEqual(expected.greedy.continuation);
      expect(result.finishReason).toBe('length');
    });

    it('reproduces logits and the greedy continuation with [in, out] weights', async () => {
      const fast = MPTModel.fromStateDict(fixture.config, fixture.stateDict, { linearLayout: 'inOut' });
      const logits = fast.forward(fixture.inputIds);
      expect(relativeL2(await logits.data(), fixture.logits.data)).toBeLessThan(1e-4);
      const result = await generate(fast, expected.greedy.prompt, {
        maxNewTokens: expected.greedy.continuation.length,
      });
      expect(result.tokens).toEqual(expected.greedy.continuation);
      logits.dispose();
      fast.dispose();
    });

    it('gives the same logits with the KV cache as with full recompute', async () => {
      const ids = fixture.inputIds;
      const full = model.forward(ids);
      const cache = model.newCache();
      const steps = [
        model.forwardWithCache(
          ids.map((r) => r.slice(0, 10)),
          cache,
        ),
      ];
      for (let t = 10; t < ids[0]!.length; t++)
        steps.push(
          model.forwardWithCache(
            ids.map((r) => [r[t]!]),
            cache,
          ),
        );
      const incremental = tf.concat(steps, 1);
      expect(relativeL2(await incremental.data(), await full.data())).toBeLessThan(1e-5);
      cache.dispose();
      tf.dispose([full, incremental, ...steps]);
    });
  });

  describe.runIf(webgpuExpected)('on webgpu (Dawn)', () => {
    // SwiftShader runs the 50432-row tied head at ~10 MFLOP/s (the whole fixture takes 25-55 s), so this checks
    // the first 8 positions of row 0: by causality their logits are exactly the fixture's.
    it('reproduces the reference logits (relative L2 < 1e-3) with the fused attention kernel', async () => {
      await selectBackend('webgpu', { log: false });
      const model = MPTModel.fromStateDict({ ...fixture.config, attnImpl: 'flash' }, fixture.stateDict);
      const positions = 8;
      const vocab = fixture.config.vocabSize;
      const t0 = performance.now();
      const logits = model.forward([fixture.inputIds[0]!.slice(0, positions)]);
      const data = await logits.data();
      const seconds = (performance.now() - t0) / 1000;
      const err = relativeL2(data, fixture.logits.data.subarray(0, positions * vocab));
      console.log(
        `[webgpu] logits relative L2 error ${err.toExponential(2)}, forward ${seconds.toFixed(2)} s`,
      );
      expect(err).toBeLessThan(1e-3);
      logits.dispose();
      model.dispose();
    });
  });
});
