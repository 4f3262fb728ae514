// The recorded decode steps reading packed f16 weights, on the real webgpu backend (SwiftShader here, which has
// no shader-f16: the halves are unpacked with the core builtin). Two comparisons:
// - a model whose weights are already f16 values (rounded on the host) loses nothing in packing, so its f16 step
//   must give the f32 step's logits up to summation rounding;
// - on ordinary float32 weights, f16 rounds each weight by at most 2^-11 of itself, so logits move by about that
//   relative amount times a modest growth through the layers: the relative L2 distance is bounded loosely, and
//   the greedy continuations are compared token by token (counted, not required to be equal everywhere).
import { selectBackend } from '@mptjs/kernels';
import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MPTConfig } from '../../config.js';
import { initStateDict } from '../../init.js';
import { type ModelOptions, MPTModel } from '../../model.js';
import { DECODE_PROMPT as prompt } from '../../testing/recorded-decode.js';
import { tinyConfig } from '../../testing/tiny-config.js';
import type { StateDict } from '../../unit-chain/host-tensor.js';
import { argMax } from '../sampling.js';
import { type BatchRowOutput, RecordedBatchDecoder } from './recorded-batch-decoder.js';
import { RecordedDecoder } from './recorded-decoder.js';
import { gemvShader, weightBytes } from './shaders.js';

/** `x` rounded to the nearest IEEE binary16 value (ties to even), computed exactly in float64. */
function roundToHalf(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const quantum = 2 ** (e - 10);
  const q = x / quantum;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q)) === 0.5) r = 2 * Math.round(q / 2);
  return r * quantum;
}

function stateDict(config: MPTConfig, halves: boolean): StateDict {
  const sd = initStateDict(config, 5);
  if (halves) for (const t of sd.values()) t.data = Float32Array.from(t.data, roundToHalf);
  return sd;
}

function tinyModel(overrides: Partial<MPTConfig> = {}, options: ModelOptions = {}, halves = false) {
  const config = tinyConfig({ maxSeqLen: 16, ...overrides });
  return MPTModel.fromStateDict(config, stateDict(config, halves), options);
}

function rowLogits(row: BatchRowOutput): Float32Array {
  if (!row.logits) throw new Error('a row came back without its logits');
  return row.logits;
}

/** Logits and tokens of `steps` greedy tokens after `prompt` through a one-sequence decoder. */
async function decode(model: MPTModel, weights: 'f32' | 'f16' | undefined, steps: number) {
  const decoder = await RecordedDecoder.create(model, {
    debugLogits: true,
    ...(weights ? { weights } : {}),
  });
  const outputs = [await decoder.prefill(prompt, { greedy: true })];
  for (let i = 1; i < steps; i++) outputs.push(await decoder.step({ greedy: true }));
  const stats = decoder.weightStats;
  decoder.dispose();
  return { logits: outputs.map((o) => o.logits!), tokens: outputs.map((o) => o.token), stats };
}

describe('packed f16 weights in the WGSL', () => {
  const shape = {
    k: 24,
    n: 72,
    layout: 'outIn',
    layerNorm: { eps: 1e-5, bias: false },
    bias: false,
    epilogue: 'store',
    clip: null,
    scale: null,
  } as const;

  it('leaves the f32 kernels as they were and unpacks only for f16', () => {
    for (const s of [shape, { ...shape, k: 6 }, { ...shape, layout: 'inOut' as const }]) {
      for (const batch of [{}, { batchRows: 4 }]) {
        const f32 = gemvShader({ ...s, ...batch });
        expect(gemvShader({ ...s, ...batch, weights: 'f32' })).toBe(f32);
        expect(f32).not.toContain('unpack2x16float');
        expect(gemvShader({ ...s, ...batch, weights: 'f16' })).toContain('unpack2x16float');
      }
    }
  });

  it('counts packed bytes with the odd last half padded', () => {
    expect(weightBytes(6, 'f32')).toBe(24);
    expect(weightBytes(6, 'f16')).toBe(12);
    expect(weightBytes(7, 'f16')).toBe(16);
  });

  it('rounds to the nearest half as IEEE binary16 does', () => {
    expect(roundToHalf(1 + 2 ** -11)).toBe(1); // a tie, to even
    expect(roundToHalf(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9); // a tie, to even (up)
    expect(roundToHalf(0.1)).toBe(0.0999755859375);
    expect(roundToHalf(2 ** -20)).toBe(2 ** -20); // subnormal, exact
    expect(roundToHalf(-Math.PI)).toBe(-3.140625);
  });
});

describe.runIf(webgpuExpected)('recorded decode with f16 weights on webgpu', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  const cases: [string, Partial<MPTConfig>, ModelOptions][] = [
    ['ALiBi + QK-LN, [out, in] weights (vec4 reads)', {}, {}],
    ['[in, out] weights', {}, { linearLayout: 'inOut' }],
    [
      'odd d_model 9 (scalar reads, an odd matrix size), biases, learned positions',
      { dModel: 9, nHeads: 3, vocabSize: 41, noBias: false, alibi: false, learnedPosEmb: true, qkLn: false },
      {},
    ],
  ];

  it.each(cases)('gives the f32 logits when the weights are already halves (%s)', async (_n, o, options) => {
    const model = tinyModel(o, options, true);
    const f32 = await decode(model, 'f32', 6);
    const f16 = await decode(model, 'f16', 6);
    expect(f16.tokens).toEqual(f32.tokens);
    f16.logits.forEach((l, i) => {
      expect(relativeL2(l, f32.logits[i]!), `step ${i}`).toBeLessThan(1e-6);
    });
    model.dispose();
  });

  it('stays near the f32 logits on float32 weights, and reports half the matrix bytes', async () => {
    const model = tinyModel();
    const f32 = await decode(model, undefined, 9);
    const f16 = await decode(model, 'f16', 9);
    const distances = f16.logits.map((l, i) => relativeL2(l, f32.logits[i]!));
    // Weights move by at most 2^-11 (4.9e-4) of themselves; the logits moved 5e-4 to 7.5e-4 here (relative L2).
    for (const d of distances) expect(d).toBeLessThan(3e-3);
    expect(Math.max(...distances)).toBeGreaterThan(0); // the weights really were rounded
    // The first token comes from the prefill (float32 in both): identical. Later ones follow the f16 logits.
    expect(f16.tokens[0]).toBe(f32.tokens[0]);
    const same = f16.tokens.filter((t, i) => t === f32.tokens[i]).length;
    expect(same).toBeGreaterThanOrEqual(f16.tokens.length - 2);
    f16.logits.forEach((l, i) => {
      expect(f16.tokens[i]).toBe(argMax(l));
    });

    expect(f32.stats.format).toBe('f32');
    expect(f32.stats.packedBytes).toBe(0);
    expect(f16.stats.format).toBe('f16');
    const c = model.config;
    const hidden = c.expansionRatio * c.dModel;
    const matrices =
      c.nLayers * (3 * c.dModel ** 2 + c.dModel ** 2 + 2 * c.dModel * hidden) + c.vocabSize * c.dModel;
    expect(f32.stats.matrixBytesPerStep).toBe(4 * matrices);
    expect(f16.stats.matrixBytesPerStep).toBe(2 * matrices);
    expect(f32.stats.bytesPerStep - f16.stats.bytesPerStep).toBe(2 * matrices);
    expect(f16.stats.packedBytes).toBeGreaterThanOrEqual(2 * matrices);
    model.dispose();
  });

  it('decodes a batch with sequences joining and leaving through f16 weights', async () => {
    const model = tinyModel({}, {}, true);
    const f32 = await RecordedBatchDecoder.create(model, { slots: 4 });
    const f16 = await RecordedBatchDecoder.create(model, { slots: 4, weights: 'f16' });
    expect(f16.weightStats.matrixBytesPerStep * 2).toBe(f32.weightStats.matrixBytesPerStep);
    const run = async (decoder: RecordedBatchDecoder) => {
      const logits: Float32Array[] = [];
      const [a, b] = await decoder.prefillMany([prompt, [27, 18]]);
      let ta = argMax(a!.logits);
      let tb = argMax(b!.logits);
      for (let s = 0; s < 2; s++) {
        const out = await decoder.step([
          { sequence: a!.sequence, token: ta },
          { sequence: b!.sequence, token: tb },
        ]);
        logits.push(...out.map(rowLogits));
        ta = out[0]!.token;
        tb = out[1]!.token;
      }
      // b leaves, c joins, a goes on beside it.
      decoder.release(b!.sequence);
      const [c] = await decoder.prefillMany([[8, 2, 8]]);
      const out = await decoder.step([
        { sequence: c!.sequence, token: argMax(c!.logits) },
        { sequence: a!.sequence, token: ta },
      ]);
      logits.push(...out.map(rowLogits));
      decoder.dispose();
      return logits;
    };
    const want = await run(f32);
    const got = await run(f16);
    got.forEach((l, i) => {
      expect(relativeL2(l, want[i]!), `row ${i}`).toBeLessThan(1e-6);
    });
    model.dispose();
  });

  it('rejects an unknown weight format', async () => {
    const model = tinyModel();
    const bad = { weights: 'bf16' } as unknown as { weights: 'f16' };
    await expect(RecordedDecoder.create(model, bad)).rejects.toThrow(
      'weights must be "f32" or "f16", got "bf16"',
    );
    await expect(RecordedBatchDecoder.create(model, { slots: 2, ...bad })).rejects.toThrow(
      'weights must be "f32" or "f16", got "bf16"',
    );
    model.dispose();
  });
});
