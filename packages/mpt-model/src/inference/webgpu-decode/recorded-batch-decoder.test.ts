// The batched recorded decode step on the real webgpu backend (SwiftShader here) against the model's tfjs path,
// one sequence at a time: every row's logits and arg-max with sequences of different lengths, sequences joining
// and leaving without changing the others' logits, rows that read back only their arg-max, the dispatches a step
// costs, and the errors for what it cannot run.
import { selectBackend } from '@mptjs/kernels';
import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initStateDict } from '../../init.js';
import { MPTModel } from '../../model.js';
import { SeededRandom } from '../../random.js';
import { DECODE_CASES, tfjsLogits, tinyDecodeModel as tinyModel } from '../../testing/recorded-decode.js';
import { tinyConfig } from '../../testing/tiny-config.js';
import { chooseToken } from '../choose-token.js';
import { argMax } from '../sampling.js';
import { RecordedDecodeError } from './gpu.js';
import { type BatchRow, RecordedBatchDecoder, type RecordedSequence } from './recorded-batch-decoder.js';
import type { TokenChoice } from './recorded-decoder.js';

const prompts = [
  [3, 1, 4, 1, 5, 9, 2],
  [27, 18],
  [8, 2, 8, 1, 8],
];

/** Each sequence's logits (prefill, then every step) and tokens while all decode together greedily. */
async function decodeTogether(decoder: RecordedBatchDecoder, starts: number[][], steps: number) {
  const prefilled = await decoder.prefillMany(starts);
  const logits = prefilled.map((p) => [p.logits]);
  const tokens = prefilled.map((p) => [argMax(p.logits)]);
  for (let s = 0; s < steps; s++) {
    const out = await decoder.step(
      prefilled.map((p, i) => ({ sequence: p.sequence, token: tokens[i]?.at(-1) ?? 0 })),
    );
    out.forEach((o, i) => {
      expect(o.token, `sequence ${i} step ${s}`).toBe(argMax(o.logits!));
      logits[i]!.push(o.logits!);
      tokens[i]!.push(o.token);
    });
  }
  for (const p of prefilled) decoder.release(p.sequence);
  return { logits, tokens };
}

describe.runIf(webgpuExpected)('RecordedBatchDecoder on webgpu', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  it.each(
    DECODE_CASES,
  )('gives every row the tfjs logits of its sequence alone, lengths differing (%s)', async (_name, overrides, options) => {
    const model = tinyModel(overrides, options);
    const decoder = await RecordedBatchDecoder.create(model, { slots: 4 });
    // Two prompts of the same length share a prefill pass. The longest reaches max_seq_len 16 on the last step.
    const starts = [...prompts, [11, 12, 13, 14, 15]];
    const { logits, tokens } = await decodeTogether(decoder, starts, 16 - prompts[0]!.length);
    let worst = 0;
    for (const [i, start] of starts.entries()) {
      const reference = await tfjsLogits(model, start, tokens[i]!.slice(0, -1));
      logits[i]!.forEach((l, s) => {
        const err = relativeL2(l, reference[s]!);
        worst = Math.max(worst, err);
        expect(err, `sequence ${i} step ${s}`).toBeLessThan(1e-5);
        expect(tokens[i]![s], `sequence ${i} step ${s}`).toBe(argMax(reference[s]!));
      });
    }
    console.log(`[recorded batch] 4 sequences, worst logits relative L2 vs tfjs ${worst.toExponential(2)}`);
    expect(decoder.liveCount).toBe(0);
    decoder.dispose();
    model.dispose();
  });

  it('matches the tfjs logits when a workgroup of the head loops over several blocks of the vocabulary', async () => {
    // 9000 outputs in blocks of 8 rows: 1125 blocks over at most 1024 workgroups.
    const config = tinyConfig({ dModel: 128, nHeads: 4, nLayers: 1, vocabSize: 9000, maxSeqLen: 16 });
    const model = MPTModel.fromStateDict(config, initStateDict(config, 9));
    const decoder = await RecordedBatchDecoder.create(model, { slots: 2 });
    const starts = [
      [4000, 17, 8999, 3],
      [5, 6],
    ];
    const { logits, tokens } = await decodeTogether(decoder, starts, 3);
    for (const [i, start] of starts.entries()) {
      const reference = await tfjsLogits(model, start, tokens[i]!.slice(0, -1));
      logits[i]!.forEach((l, s) => {
        expect(relativeL2(l, reference[s]!), `sequence ${i} step ${s}`).toBeLessThan(1e-5);
      });
    }
    decoder.dispose();
    model.dispose();
  });

  it('leaves the other rows logits unchanged as sequences join and leave', async () => {
    const model = tinyModel();
    const decoder = await RecordedBatchDecoder.create(model, { slots: 3 });
    // Sequence 0 alone, for reference.
    const alone = await decodeTogether(decoder, [prompts[0]!], 6);
    // Prefilled alone, as in the reference (a left-padded pass need not give the same bits).
    const a = await decoder.prefill(prompts[0]!);
    const b = await decoder.prefill(prompts[1]!);
    let tokenA = argMax(a!.logits);
    let tokenB = argMax(b!.logits);
    let c: RecordedSequence | undefined;
    let tokenC = 0;
    const seenA = [a!.logits];
    for (let s = 0; s < 6; s++) {
      if (s === 2) {
        // C joins mid-stream, into the third slot.
        const joined = await decoder.prefill(prompts[2]!);
        c = joined.sequence;
        tokenC = argMax(joined.logits);
      }
      if (s === 4) {
        // B leaves, and another sequence takes its slot at once.
        decoder.release(b!.sequence);
        const again = await decoder.prefill([5, 6]);
        expect(again.sequence.slot).toBe(b!.sequence.slot);
        decoder.release(again.sequence);
      }
      const rows = [{ sequence: a!.sequence, token: tokenA }];
      if (s < 4) rows.push({ sequence: b!.sequence, token: tokenB });
      if (c) rows.unshift({ sequence: c, token: tokenC });
      const out = await decoder.step(rows);
      const atA = rows.findIndex((r) => r.sequence === a!.sequence);
      seenA.push(out[atA]?.logits as Float32Array);
      tokenA = out[atA]!.token;
      if (s < 4) tokenB = out[rows.findIndex((r) => r.sequence === b.sequence)]!.token;
      if (c) tokenC = out[0]!.token;
    }
    // The same arithmetic per row whatever else is in the batch: the same bits.
    seenA.forEach((l, s) => {
      expect(Array.from(l), `step ${s}`).toEqual(Array.from(alone.logits[0]?.[s] ?? []));
    });
    expect(a!.sequence.length).toBe(prompts[0]!.length + 6);
    decoder.dispose();
    model.dispose();
  });

  it('reads back only the arg-max of rows that ask for no logits; concurrent prefills take their own slots', async () => {
    const model = tinyModel();
    const decoder = await RecordedBatchDecoder.create(model, { slots: 4 });
    const [a, b] = await Promise.all([decoder.prefill(prompts[0]!), decoder.prefill(prompts[2]!)]);
    expect(a.sequence.slot).not.toBe(b.sequence.slot);
    const out = await decoder.step([
      { sequence: a.sequence, token: 7, logits: false },
      { sequence: b.sequence, token: 9 },
    ]);
    expect(out[0]!.logits).toBeUndefined();
    const reference = await tfjsLogits(model, prompts[0]!, [7]);
    expect(out[0]!.token).toBe(argMax(reference[1]!));
    const referenceB = await tfjsLogits(model, prompts[2]!, [9]);
    expect(relativeL2(out[1]?.logits as Float32Array, referenceB[1]!)).toBeLessThan(1e-5);
    const none = await decoder.step([{ sequence: b.sequence, token: out[1]!.token, logits: false }]);
    expect(none).toEqual([{ token: expect.any(Number) }]);
    decoder.dispose();
    model.dispose();
  });

  it('samples each row on the device as the host sampler does, rows with their own parameters joining and leaving', async () => {
    const model = tinyModel();
    const decoder = await RecordedBatchDecoder.create(model, { slots: 3 });
    interface Live {
      sequence: RecordedSequence;
      choice: TokenChoice;
      random: SeededRandom | undefined;
      draws: number;
      next: number;
      steps: number;
    }
    /** The host's choice from `logits`: its seeded generator's next draw, as a request's sampler makes it. */
    const hostChoice = (row: Live, logits: Float32Array) => {
      if (!row.random) return argMax(logits);
      const { temperature, topK, topP } = row.choice as { temperature: number; topK?: number; topP?: number };
      row.draws++;
      return chooseToken(logits.slice(), { temperature, topK, topP }, row.random, []);
    };
    const start = async (prompt: number[], choice: TokenChoice, steps: number): Promise<Live> => {
      const { sequence, logits } = await decoder.prefill(prompt);
      const random = 'seed' in choice ? new SeededRandom(choice.seed ?? 0) : undefined;
      const row: Live = { sequence, choice, random, draws: 0, next: 0, steps };
      row.next = hostChoice(row, logits);
      return row;
    };
    const plans: [number[], TokenChoice, number][] = [
      [prompts[0]!, { temperature: 1.2, seed: 5 }, 8],
      [prompts[1]!, { temperature: 0.8, topK: 4, seed: 6 }, 3],
      [prompts[2]!, { greedy: true }, 5],
      [[9, 9, 2], { temperature: 1, topP: 0.85, seed: 0xdeadbeef }, 4],
      [[30, 1], { temperature: 1.5, topK: 8, topP: 0.9, seed: 6 }, 3],
    ];
    const live: Live[] = [];
    const waiting = [...plans];
    let compared = 0;
    let sampledWithoutLogits = 0;
    for (let s = 0; s < 12 && (live.length > 0 || waiting.length > 0); s++) {
      while (live.length < decoder.slots && waiting.length > 0) live.push(await start(...waiting.shift()!));
      // Every third step the sampled rows read back only their token; the others check it against the host's.
      const withLogits = s % 3 !== 2;
      const rows: BatchRow[] = live.map((r) => ({
        sequence: r.sequence,
        token: r.next,
        choice: r.choice,
        counter: r.draws,
        logits: withLogits,
      }));
      const out = await decoder.step(rows);
      out.forEach((o, i) => {
        const row = live[i]!;
        if (withLogits) {
          const want = hostChoice(row, o.logits!);
          expect(o.token, `step ${s} row ${i} ${JSON.stringify(row.choice)}`).toBe(want);
          compared++;
        } else {
          expect(o.logits).toBeUndefined();
          if (row.random) {
            // The device made this draw: the host generator moves past it too.
            row.random.next();
            row.draws++;
            sampledWithoutLogits++;
          }
        }
        row.next = o.token;
        row.steps--;
      });
      for (const row of live.filter((r) => r.steps === 0)) decoder.release(row.sequence);
      live.splice(0, live.length, ...live.filter((r) => r.steps > 0));
    }
    expect(waiting).toEqual([]);
    expect(live).toEqual([]);
    expect(compared).toBeGreaterThan(12);
    expect(sampledWithoutLogits).toBeGreaterThan(0);
    decoder.dispose();
    model.dispose();
  });

  it('gives a sampled row without logits the token it gets with them', async () => {
    const model = tinyModel();
    const decoder = await RecordedBatchDecoder.create(model, { slots: 2 });
    const tokens: number[][] = [];
    for (const logits of [true, false]) {
      const [a, b] = await decoder.prefillMany([prompts[0]!, prompts[2]!]);
      const got: number[] = [];
      let next = [1, 2];
      for (let s = 0; s < 5; s++) {
        const out = await decoder.step([
          { sequence: a!.sequence, token: next[0]!, choice: { temperature: 3, seed: 1 }, counter: s, logits },
          {
            sequence: b!.sequence,
            token: next[1]!,
            choice: { temperature: 3, topK: 5, seed: 1 },
            counter: s,
            logits,
          },
        ]);
        next = out.map((o) => o.token);
        got.push(...next);
      }
      decoder.release(a!.sequence);
      decoder.release(b!.sequence);
      tokens.push(got);
    }
    expect(tokens[1]).toEqual(tokens[0]);
    // At temperature 3 over 40 ids the draws are not all the arg-max.
    expect(new Set(tokens[0]).size).toBeGreaterThan(2);
    decoder.dispose();
    model.dispose();
  });

  it('costs the same dispatches per step whatever its row count, and counts its host time', async () => {
    const model = tinyModel();
    const decoder = await RecordedBatchDecoder.create(model, { slots: 4 });
    const proto = (globalThis as unknown as { GPUComputePassEncoder: { prototype: Record<string, unknown> } })
      .GPUComputePassEncoder.prototype;
    const dispatch = proto['dispatchWorkgroups'] as (...a: unknown[]) => void;
    const counted: number[] = [];
    const [a, b] = await decoder.prefillMany([prompts[0]!, prompts[1]!]);
    proto['dispatchWorkgroups'] = function (this: unknown, ...args: unknown[]) {
      counted[counted.length - 1]!++;
      dispatch.apply(this, args);
    };
    try {
      counted.push(0);
      await decoder.step([{ sequence: a!.sequence, token: 1 }]);
      counted.push(0);
      await decoder.step([
        { sequence: a!.sequence, token: 1 },
        { sequence: b!.sequence, token: 2 },
      ]);
      counted.push(0);
      await decoder.step([
        { sequence: a!.sequence, token: 1, choice: { greedy: true } },
        { sequence: b!.sequence, token: 2, choice: { temperature: 1, seed: 1 } },
      ]);
    } finally {
      proto['dispatchWorkgroups'] = dispatch;
    }
    // Embedding, 5 per layer, the head and the two arg-max passes, as one sequence's greedy step.
    expect(decoder.dispatchesPerStep).toBe(5 * model.config.nLayers + 4);
    // A row that samples adds the sampling kernel, one workgroup per row.
    expect(counted).toEqual([
      decoder.dispatchesPerStep,
      decoder.dispatchesPerStep,
      decoder.dispatchesPerStep + 1,
    ]);
    expect(decoder.hostStats).toMatchObject({ steps: 3, rows: 5, logitRows: 5 });
    expect(decoder.hostStats.encodeSubmitMs).toBeGreaterThan(0);
    decoder.dispose();
    model.dispose();
  });

  describe('errors', () => {
    it('refuses more live sequences than slots, and a step with more rows than slots', async () => {
      const model = tinyModel();
      const decoder = await RecordedBatchDecoder.create(model, { slots: 2 });
      expect(decoder.slots).toBe(2);
      await expect(decoder.prefillMany(prompts)).rejects.toThrow(
        '3 new sequences need free slots but 2 of 2 are free: release a finished sequence first',
      );
      expect(decoder.liveCount).toBe(0);
      const [a, b] = await decoder.prefillMany([prompts[0]!, prompts[1]!]);
      await expect(decoder.prefill(prompts[2]!)).rejects.toThrow(
        '1 new sequences need free slots but 0 of 2',
      );
      expect(() =>
        decoder.step([
          { sequence: a!.sequence, token: 1 },
          { sequence: b!.sequence, token: 1 },
          { sequence: a!.sequence, token: 1 },
        ]),
      ).toThrow('a step decodes at most 2 rows (the slots), got 3');
      expect(() =>
        decoder.step([
          { sequence: a!.sequence, token: 1 },
          { sequence: a!.sequence, token: 2 },
        ]),
      ).toThrow('the sequence in slot 0 appears twice in one step');
      expect(() => decoder.step([])).toThrow('a step needs at least one row');
      expect(() => decoder.step([{ sequence: a!.sequence, token: 40 }])).toThrow(
        'token id 40 is outside the vocabulary [0, 40)',
      );
      expect(() =>
        decoder.step([
          { sequence: a!.sequence, token: 1 },
          { sequence: b!.sequence, token: 1, choice: { temperature: 0 } },
        ]),
      ).toThrow('row 1: temperature must be > 0 when sampling, got 0');
      expect(() =>
        decoder.step([{ sequence: a!.sequence, token: 1, choice: { temperature: 1, topP: 0 } }]),
      ).toThrow('row 0: topP must be in (0, 1], got 0');
      expect(() =>
        decoder.step([{ sequence: a!.sequence, token: 1, choice: { temperature: 1 }, counter: -1 }]),
      ).toThrow('row 0: counter must be an integer in [0, 2^32), got -1');
      expect(a!.sequence.length).toBe(prompts[0]!.length);
      decoder.dispose();
      model.dispose();
    });

    it('refuses a step past max_seq_len and a prompt longer than it', async () => {
      const model = tinyModel();
      const decoder = await RecordedBatchDecoder.create(model, { slots: 2 });
      await expect(decoder.prefill(new Array(17).fill(1))).rejects.toThrow(
        'the prompt holds 17 tokens, more than max_seq_len 16',
      );
      await expect(decoder.prefillMany([[1], []])).rejects.toThrow('prompt 1 must hold at least one token');
      const { sequence } = await decoder.prefill(new Array(15).fill(1));
      await decoder.step([{ sequence, token: 1 }]);
      expect(() => decoder.step([{ sequence, token: 1 }])).toThrow(
        'the sequence in slot 0 already holds max_seq_len 16 positions',
      );
      decoder.dispose();
      model.dispose();
    });

    it('refuses a released sequence, also once another took its slot', async () => {
      const model = tinyModel();
      const decoder = await RecordedBatchDecoder.create(model, { slots: 2 });
      const { sequence } = await decoder.prefill(prompts[0]!);
      decoder.release(sequence);
      decoder.release(sequence);
      const message = 'the sequence that held slot 0 was released: start a new one with prefill';
      expect(() => decoder.step([{ sequence, token: 1 }])).toThrow(message);
      const next = await decoder.prefill(prompts[1]!);
      expect(next.sequence.slot).toBe(0);
      expect(() => decoder.step([{ sequence, token: 1 }])).toThrow(message);
      const other = await RecordedBatchDecoder.create(model, { slots: 1 });
      expect(() => other.step([{ sequence: next.sequence, token: 1 }])).toThrow(
        'the sequence belongs to another decoder',
      );
      other.dispose();
      decoder.dispose();
      expect(() => decoder.step([{ sequence: next.sequence, token: 1 }])).toThrow(
        'the batched recorded decoder is disposed',
      );
      model.dispose();
    });

    it('rejects bad slot counts, a disposed model, f16 copies of a quantized one and another backend', async () => {
      const model = tinyModel();
      await expect(RecordedBatchDecoder.create(model, { slots: 0 })).rejects.toThrow(
        'slots must be an integer in [1, 64], got 0',
      );
      await expect(RecordedBatchDecoder.create(model, { slots: 2.5 })).rejects.toThrow(RangeError);
      const decoder = await RecordedBatchDecoder.create(model, { slots: 1 });
      model.dispose();
      await expect(decoder.prefill(prompts[0]!)).rejects.toThrow('was disposed');
      decoder.dispose();
      await expect(RecordedBatchDecoder.create(model)).rejects.toThrow('the model is disposed');
      const int8 = tinyModel({}, { quantize: 'int8' });
      // An int8 model decodes through its own int8 weights (int8-weights.test.ts); f16 copies of them are refused.
      await expect(RecordedBatchDecoder.create(int8, { weights: 'f16' })).rejects.toThrow(
        'this model is int8-quantized: its recorded step reads its int8 weights',
      );
      int8.dispose();
      await selectBackend('cpu', { log: false });
      const onCpu = tinyModel();
      await expect(RecordedBatchDecoder.create(onCpu)).rejects.toThrow(RecordedDecodeError);
      onCpu.dispose();
      await selectBackend('webgpu', { log: false });
      expect(tf.getBackend()).toBe('webgpu');
    });
  });
});
