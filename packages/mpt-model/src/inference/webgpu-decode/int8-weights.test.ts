// The recorded decode steps of an int8-quantized model, on the real webgpu backend (SwiftShader here): they bind
// the model's own int8 rows and per-row scales (bytes unpacked with shifts, no language extension) and must give
// the logits of the model's tfjs path, which runs the same int8 weights through @mptjs/kernels' int8 kernels.
import { selectBackend } from '@mptjs/kernels';
import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MPTConfig } from '../../config.js';
import { initStateDict } from '../../init.js';
import { type ModelOptions, MPTModel } from '../../model.js';
import { DECODE_PROMPT as prompt, tfjsLogits, tinyDecodeModel } from '../../testing/recorded-decode.js';
import { argMax } from '../sampling.js';
import { RecordedBatchDecoder } from './recorded-batch-decoder.js';
import { RecordedDecoder } from './recorded-decoder.js';

function int8Model(overrides: Partial<MPTConfig> = {}, options: ModelOptions = {}): MPTModel {
  return tinyDecodeModel(overrides, { quantize: 'int8', ...options });
}

describe.runIf(webgpuExpected)('recorded decode of an int8 model on webgpu', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  const cases: [string, Partial<MPTConfig>, ModelOptions][] = [
    ['ALiBi + QK-LN (vec4 reads of whole words)', {}, {}],
    ['[in, out] float32 layout (int8 rows stay [out, in])', {}, { linearLayout: 'inOut' }],
    [
      'd_model 9: rows of 9 bytes padded to 16 (byte reads), biases, learned positions',
      { dModel: 9, nHeads: 3, vocabSize: 41, noBias: false, alibi: false, learnedPosEmb: true, qkLn: false },
      {},
    ],
  ];

  it.each(cases)('gives the tfjs path logits through the int8 weights (%s)', async (_n, o, options) => {
    const model = int8Model(o, options);
    expect(model.quantization).toBe('int8');
    const decoder = await RecordedDecoder.create(model, { debugLogits: true });
    expect(decoder.weightStats.format).toBe('int8');
    const outputs = [await decoder.prefill(prompt, { greedy: true })];
    for (let i = 1; i < 6; i++) outputs.push(await decoder.step({ greedy: true }));
    decoder.dispose();
    const tokens = outputs.map((s) => s.token);
    const want = await tfjsLogits(model, prompt, tokens.slice(0, -1));
    outputs.forEach((s, i) => {
      expect(relativeL2(s.logits!, want[i]!), `step ${i}`).toBeLessThan(1e-5);
      expect(s.token).toBe(argMax(want[i]!));
    });
    model.dispose();
  });

  it('reads about a quarter of the f32 matrix bytes, and refuses another weight format', async () => {
    const model = int8Model();
    const f32Model = MPTModel.fromStateDict(model.config, initStateDict(model.config, 5));
    const decoder = await RecordedBatchDecoder.create(model, { slots: 2 });
    const f32 = await RecordedBatchDecoder.create(f32Model, { slots: 2 });
    const c = model.config;
    const rowBytes = Math.ceil(c.dModel / 16) * 16; // every matrix here has k = d_model but down_proj
    const hidden = c.expansionRatio * c.dModel;
    const rows = c.nLayers * (3 * c.dModel + c.dModel + hidden) + c.vocabSize;
    const expected = rows * rowBytes + c.nLayers * c.dModel * hidden + 4 * (rows + c.nLayers * c.dModel);
    expect(decoder.weightStats.matrixBytesPerStep).toBe(expected);
    expect(decoder.weightStats.packedBytes).toBe(0);
    expect(decoder.weightStats.matrixBytesPerStep / f32.weightStats.matrixBytesPerStep).toBeLessThan(0.35);
    // A batch through the int8 step matches each sequence alone through the tfjs path.
    const [a, b] = await decoder.prefillMany([prompt, [27, 18]]);
    const out = await decoder.step([
      { sequence: a!.sequence, token: argMax(a!.logits) },
      { sequence: b!.sequence, token: argMax(b!.logits) },
    ]);
    const wantA = await tfjsLogits(model, prompt, [argMax(a!.logits)]);
    const wantB = await tfjsLogits(model, [27, 18], [argMax(b!.logits)]);
    const [rowA, rowB] = out.map((o) => o.logits ?? new Float32Array(0));
    expect(relativeL2(rowA ?? [], wantA[1] ?? [])).toBeLessThan(1e-5);
    expect(relativeL2(rowB ?? [], wantB[1] ?? [])).toBeLessThan(1e-5);
    decoder.dispose();
    f32.dispose();
    await expect(RecordedDecoder.create(model, { weights: 'f16' })).rejects.toThrow(
      'this model is int8-quantized: its recorded step reads its int8 weights (f16 copies are made of float32 weights only)',
    );
    model.dispose();
    f32Model.dispose();
  });
});
