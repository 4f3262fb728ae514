import { logprobsOf, SeededRandom } from '@mptjs/mpt-model';
import { beforeAll, describe, expect, it } from 'vitest';
import { JsonTokenizer } from '../engine/json-tokenizer.js';
import { fixture } from '../testing/fixture.js';
import { Generation, type GenerationParams } from './generation.js';

const fx = fixture();
const VOCAB = 50432;

/** Logits whose arg-max is `id`: greedy generation then reproduces a chosen token sequence. */
function oneHot(id: number): Float32Array {
  const l = new Float32Array(VOCAB);
  l[id] = 10;
  return l;
}

const greedy = (over: Partial<GenerationParams> = {}): GenerationParams => ({
  temperature: 0,
  topK: 0,
  topP: 1,
  maxNewTokens: 100,
  stopStrings: [],
  stopIds: [0],
  ...over,
});

describe.skipIf(!fx)('Generation', () => {
  let tok: JsonTokenizer;
  beforeAll(async () => {
    tok = await JsonTokenizer.fromFile(fx!.tokenizer);
  });

  function run(text: string, params: GenerationParams) {
    const deltas: string[] = [];
    const g = new Generation([1], params, 128, tok, { onDelta: (d) => deltas.push(d.text) });
    for (const id of tok.encode(text)) if (g.advance(oneHot(id))) break;
    if (!g.done) g.end('length');
    return { g, deltas };
  }

  it('cuts the text before a stop string that spans tokens, and never shows its start', () => {
    const { g, deltas } = run('Hello world. Bye now', greedy({ stopStrings: ['ld. B'] }));
    expect(g.finishReason).toBe('stop_string');
    expect(g.text).toBe('Hello wor');
    expect(deltas.join('')).toBe('Hello wor');
  });

  it('streams multi-byte characters whole (no U+FFFD in any delta)', () => {
    const text = 'naïve 🙂 café';
    const { g, deltas } = run(text, greedy());
    expect(g.text).toBe(text);
    expect(deltas.join('')).toBe(text);
    for (const d of deltas) expect(d).not.toContain('\uFFFD');
  });

  it('stops at the end-of-text id without showing it', () => {
    const g = new Generation([1], greedy(), 128, tok);
    for (const id of [...tok.encode('Hi'), 0, ...tok.encode(' more')]) if (g.advance(oneHot(id))) break;
    expect(g.finishReason).toBe('stop_token');
    expect(g.text).toBe('Hi');
    expect(g.ids).toEqual([...tok.encode('Hi'), 0]);
  });

  it('ends at max tokens and at the context length', () => {
    const a = new Generation([1], greedy({ maxNewTokens: 2 }), 128, tok);
    expect(a.advance(oneHot(5))).toBe(false);
    expect(a.advance(oneHot(6))).toBe(true);
    expect(a.finishReason).toBe('length');
    const b = new Generation([1, 2, 3], greedy(), 4, tok);
    expect(b.advance(oneHot(5))).toBe(true);
    expect(b.finishReason).toBe('max_seq_len');
  });

  it('reports logprobs of the chosen token and its top alternatives', () => {
    const g = new Generation([1], greedy({ logprobs: 2 }), 128, tok);
    const logits = new Float32Array(VOCAB);
    logits[7] = 3;
    logits[9] = 2;
    g.advance(logits);
    const t = g.tokens[0]!;
    expect(t.token).toBe(7);
    expect(t.top!.map((a) => a.id)).toEqual([7, 9]);
    const z = Math.exp(3) + Math.exp(2) + (VOCAB - 2);
    expect(t.logprob).toBeCloseTo(3 - Math.log(z), 5);
  });

  it.each([
    1, 0.7,
  ])('gives sampled tokens at temperature %s the logprobs computed from the raw logits alone', (temperature) => {
    const g = new Generation([1], greedy({ temperature, topP: 0.9, seed: 3, logprobs: 3 }), 128, tok);
    const rows: Float32Array[] = [];
    for (let step = 0; step < 6; step++) {
      const row = new SeededRandom(step).fillNormal(new Float32Array(VOCAB), 3);
      rows.push(row.slice());
      g.advance(row);
    }
    g.tokens.forEach((t, i) => {
      const want = logprobsOf(rows[i]!, t.token, 3);
      expect(t.logprob).toBe(want.logprob);
      expect(t.top).toEqual(want.top);
    });
  });

  it('needs logits only for logprobs or a repetition penalty; takes a chosen token with the context rule', () => {
    expect(new Generation([1], greedy(), 128, tok).deviceChoice).toEqual({ greedy: true });
    expect(new Generation([1], greedy({ logprobs: 0 }), 128, tok).needsLogits).toBe(true);
    expect(new Generation([1], greedy({ repetitionPenalty: 1.2 }), 128, tok).needsLogits).toBe(true);
    expect(
      new Generation([1], greedy({ temperature: 0.7, logprobs: 2 }), 128, tok).deviceChoice,
    ).toBeUndefined();
    const penalized = new Generation([1], greedy({ temperature: 0.7, repetitionPenalty: 1.1 }), 128, tok);
    expect(() => penalized.acceptChosen(5)).toThrow(
      'this sequence chooses its tokens from the logits on the host',
    );
    // A sampled sequence: its seed as the host generator reads it, and its draw count as the counter.
    const sampled = new Generation(
      [1],
      greedy({ temperature: 0.7, topK: 5, seed: -1, stopIds: [] }),
      128,
      tok,
    );
    expect(sampled.deviceChoice).toEqual({
      temperature: 0.7,
      topK: 5,
      topP: 1,
      seed: 0xffffffff,
      counter: 0,
    });
    sampled.advance(new Float32Array(VOCAB));
    expect(sampled.acceptChosen(7)).toBe(false);
    expect(sampled.deviceChoice).toMatchObject({ counter: 2 });
    expect(sampled.ids.slice(1)).toEqual([7]);
    // Prompt 2 + 2 tokens fill max_seq_len 4: the second token ends the sequence.
    const g = new Generation([1, 2], greedy(), 4, tok);
    expect(g.acceptChosen(5)).toBe(false);
    expect(g.acceptChosen(6)).toBe(true);
    expect(g.ids).toEqual([5, 6]);
    expect(g.finishReason).toBe('max_seq_len');
  });
});
