// The golden checkpoint through @mptjs/mpt-model's recorded WebGPU decode steps: the reference greedy
// continuation, the tfjs path's logits at every step, and the continuation through a batch of other sequences.
import { readFileSync } from 'node:fs';
import { selectBackend } from '@mptjs/kernels';
import {
  argMax,
  MPTModel,
  RecordedBatchDecoder,
  RecordedDecoder,
  type RecordedSequence,
  type TokenChoice,
} from '@mptjs/mpt-model';
import { relativeL2, sharedFile, TINY_MOSAIC_DIR, webgpuExpected } from '@mptjs/test-fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFixture } from '../testing/model-fixture.js';

const fixtureConfig = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
const fixtureDir = fixtureConfig?.replace(/\/config\.json$/, '');

/** Logits of the tfjs path after `prompt` and after each of `tokens`. */
async function tfjsLogits(model: MPTModel, start: number[], tokens: number[]): Promise<Float32Array[]> {
  const cache = model.newCache();
  const out = [(await model.prefill([start], cache).data()) as Float32Array];
  for (const t of tokens) out.push((await model.decodeStep([t], cache).data()) as Float32Array);
  cache.dispose();
  return out;
}

/** `steps` tokens after `start` through the recorded step, with the logits each was chosen from. */
async function recorded(
  model: MPTModel,
  start: number[],
  steps: number,
  choice: TokenChoice = { greedy: true },
) {
  const decoder = await RecordedDecoder.create(model, { debugLogits: true });
  const outputs = [await decoder.prefill(start, choice, 0)];
  for (let i = 1; i < steps; i++) outputs.push(await decoder.step(choice, i));
  decoder.dispose();
  return outputs;
}

describe.runIf(webgpuExpected)('RecordedDecoder on webgpu', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  describe.skipIf(!fixtureDir)('golden fixture mpt-tiny-mosaic', () => {
    it('reproduces the greedy continuation and the tfjs logits of every step', async () => {
      const fixture = await loadFixture(fixtureDir!);
      const expected = JSON.parse(readFileSync(`${fixtureDir}/expected.json`, 'utf8')) as {
        greedy: { prompt: number[]; continuation: number[] };
      };
      const model = MPTModel.fromStateDict(fixture.config, fixture.stateDict);
      const { prompt: start, continuation } = expected.greedy;
      const t0 = performance.now();
      const outputs = await recorded(model, start, continuation.length);
      const seconds = (performance.now() - t0) / 1000;
      expect(outputs.map((o) => o.token)).toEqual(continuation);
      const reference = await tfjsLogits(model, start, continuation.slice(0, -1));
      const errors = outputs.map((o, i) => relativeL2(o.logits!, reference[i]!));
      console.log(
        `[recorded] golden continuation of ${continuation.length} tokens in ${seconds.toFixed(2)} s, worst logits ` +
          `relative L2 vs tfjs ${Math.max(...errors).toExponential(2)}`,
      );
      for (const e of errors) expect(e).toBeLessThan(1e-5);
      model.dispose();
    }, 600_000);

    it('follows the greedy continuation through f16 and int8 weights', async () => {
      const fixture = await loadFixture(fixtureDir!);
      const expected = JSON.parse(readFileSync(`${fixtureDir}/expected.json`, 'utf8')) as {
        greedy: { prompt: number[]; continuation: number[] };
      };
      const { prompt: start, continuation } = expected.greedy;
      const model = MPTModel.fromStateDict(fixture.config, fixture.stateDict);
      const int8 = MPTModel.fromStateDict(fixture.config, fixture.stateDict, { quantize: 'int8' });
      const run = async (m: MPTModel, weights?: 'f16') => {
        const decoder = await RecordedDecoder.create(m, weights ? { weights } : {});
        const tokens = [(await decoder.prefill(start, { greedy: true })).token];
        for (let i = 1; i < continuation.length; i++)
          tokens.push((await decoder.step({ greedy: true })).token);
        const stats = decoder.weightStats;
        decoder.dispose();
        // Tokens until the first that differs from the golden continuation.
        const agree = tokens.findIndex((t, i) => t !== continuation[i]);
        return { agree: agree < 0 ? tokens.length : agree, stats };
      };
      const f16 = await run(model, 'f16');
      const q = await run(int8);
      console.log(
        `[recorded] golden continuation of ${continuation.length}: f16 weights follow ${f16.agree} tokens ` +
          `(${(f16.stats.bytesPerStep / 2 ** 20).toFixed(2)} MiB a step), int8 ${q.agree} ` +
          `(${(q.stats.bytesPerStep / 2 ** 20).toFixed(2)} MiB a step)`,
      );
      expect(f16.stats.format).toBe('f16');
      expect(q.stats.format).toBe('int8');
      // Measured: both follow the whole continuation; a rounding flip of a near tie would end it early.
      expect(f16.agree).toBe(continuation.length);
      expect(q.agree).toBe(continuation.length);
      model.dispose();
      int8.dispose();
    }, 600_000);

    it('reproduces the greedy continuation in a batch that others join and leave', async () => {
      const fixture = await loadFixture(fixtureDir!);
      const expected = JSON.parse(readFileSync(`${fixtureDir}/expected.json`, 'utf8')) as {
        greedy: { prompt: number[]; continuation: number[] };
      };
      const model = MPTModel.fromStateDict(fixture.config, fixture.stateDict);
      const { prompt: start, continuation } = expected.greedy;
      const decoder = await RecordedBatchDecoder.create(model, { slots: 3 });
      const [before, golden] = await decoder.prefillMany([[5, 6, 7], start]);
      const tokens = [argMax(golden!.logits)];
      let others: { sequence: RecordedSequence; token: number }[] = [
        { sequence: before!.sequence, token: argMax(before!.logits) },
      ];
      for (let s = 1; s < continuation.length; s++) {
        if (s === 3) {
          const joined = await decoder.prefill([40000, 2, 17, 9, 300, 12, 1, 1, 8, 50000]);
          others.push({ sequence: joined.sequence, token: argMax(joined.logits) });
        }
        if (s === 7) {
          decoder.release(others[0]!.sequence);
          others = others.slice(1);
        }
        // The golden row reads back its arg-max alone; the others their logits too.
        const out = await decoder.step([
          ...others,
          { sequence: golden!.sequence, token: tokens[tokens.length - 1]!, logits: false },
        ]);
        others.forEach((o, i) => {
          o.token = out[i]!.token;
        });
        tokens.push(out[others.length]!.token);
      }
      expect(tokens).toEqual(continuation);
      decoder.dispose();
      model.dispose();
    }, 600_000);
  });
});
