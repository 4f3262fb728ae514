import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../random.js';
import { DecodeSequence, type DecodeSequenceOptions, type TextDelta } from './decode-sequence.js';
import { logprobsOf } from './logprobs.js';

const VOCAB = 30;
/** One letter per id: 0 -> 'a', 1 -> 'b', ... */
const decode = (ids: readonly number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');

/** Logits whose arg-max is `id`. */
function oneHot(id: number): Float32Array {
  const l = new Float32Array(VOCAB);
  l[id] = 10;
  return l;
}

const greedy = (over: Partial<DecodeSequenceOptions> = {}): DecodeSequenceOptions => ({
  sampling: {},
  seed: 0,
  maxNewTokens: 100,
  decode,
  ...over,
});

/** A sequence that records its deltas. */
class Recorded extends DecodeSequence {
  readonly deltas: TextDelta[] = [];
  finished = 0;
  protected override onDelta(delta: TextDelta): void {
    this.deltas.push(delta);
  }
  protected override onFinish(): void {
    this.finished++;
  }
}

describe('DecodeSequence', () => {
  it('takes the arg-max when greedy and numbers the tokens', () => {
    const s = new DecodeSequence([1], greedy());
    expect(s.advance(oneHot(4), false)).toBe(false);
    expect(s.advance(oneHot(2), false)).toBe(false);
    expect(s.ids).toEqual([4, 2]);
    expect(s.tokens).toEqual([
      { token: 4, index: 0 },
      { token: 2, index: 1 },
    ]);
    expect(s.text).toBe('ec');
    expect(s.lastId).toBe(2);
  });

  it('ends on a stop id (kept in ids, not in the text or the deltas), before the budget and the context', () => {
    const s = new Recorded([1], greedy({ stopIds: [3], maxNewTokens: 2 }));
    s.accept(0, false);
    expect(s.accept(3, true)).toBe(true);
    expect(s.finishReason).toBe('stop_token');
    expect(s.text).toBe('a');
    expect(s.ids).toEqual([0, 3]);
    expect(s.deltas.flatMap((d) => d.tokens.map((t) => t.token))).toEqual([0]);
    expect(s.finished).toBe(1);
  });

  it('cuts the text before a stop string spanning tokens and never shows its start', () => {
    const s = new Recorded([1], greedy({ stopStrings: ['cd'] }));
    for (const id of [0, 1, 2, 3, 4]) if (s.accept(id, false)) break;
    expect(s.finishReason).toBe('stop_string');
    expect(s.text).toBe('ab');
    expect(s.deltas.map((d) => d.text).join('')).toBe('ab');
    // 'c' was held back until 'd' settled it.
    expect(s.deltas.map((d) => d.text)).toEqual(['a', 'b', '', '']);
    expect(s.ids).toEqual([0, 1, 2, 3]);
  });

  it('ends at the token budget before the full context, and at the full context', () => {
    const budget = new DecodeSequence([1], greedy({ maxNewTokens: 1 }));
    expect(budget.accept(5, true)).toBe(true);
    expect(budget.finishReason).toBe('length');
    const full = new DecodeSequence([1], greedy({ maxNewTokens: 5 }));
    expect(full.accept(5, false)).toBe(false);
    expect(full.accept(6, true)).toBe(true);
    expect(full.finishReason).toBe('max_seq_len');
    expect(full.advance(oneHot(7), false)).toBe(true);
    expect(full.ids).toEqual([5, 6]);
  });

  it('reports logprobs of the raw logits, also with a repetition penalty', () => {
    const s = new DecodeSequence([4], greedy({ logprobs: 2, sampling: { repetitionPenalty: 3 } }));
    const logits = new Float32Array(VOCAB);
    logits[4] = 3;
    logits[9] = 2;
    const raw = logits.slice();
    s.advance(logits, false);
    const t = s.tokens[0]!;
    // The penalty moved the choice off the repeated id 4; logprobs still describe the model's logits.
    expect(t.token).toBe(9);
    expect(t.top!.map((a) => a.id)).toEqual([4, 9]);
    expect(t.logprob).toBe(logprobsOf(raw, 9, 2).logprob);
  });

  it('draws the same seeded tokens and logprobs at temperature 1 as a second sequence with the same seed', () => {
    const rows = Array.from({ length: 8 }, (_, i) =>
      new SeededRandom(i).fillNormal(new Float32Array(VOCAB), 2),
    );
    const run = (seed: number) => {
      const s = new DecodeSequence([1], greedy({ sampling: { temperature: 1 }, seed, logprobs: 1 }));
      for (const r of rows) s.advance(r.slice(), false);
      return s.tokens;
    };
    const a = run(5);
    expect(run(5)).toEqual(a);
    for (const [i, t] of a.entries()) {
      expect(t.logprob).toBeCloseTo(logprobsOf(rows[i]!, t.token, 1).logprob, 10);
    }
    expect([1, 2, 3].some((seed) => JSON.stringify(run(seed)) !== JSON.stringify(a))).toBe(true);
  });

  it('counts its draws, and continues the same draws after tokens drawn elsewhere', () => {
    const rows = Array.from({ length: 10 }, (_, i) =>
      new SeededRandom(i + 20).fillNormal(new Float32Array(VOCAB), 3),
    );
    const sampling = { temperature: 1.5, topK: 12 };
    const host = new DecodeSequence([1], greedy({ sampling, seed: 9 }));
    for (const r of rows) host.advance(r.slice(), false);
    expect(host.draws).toBe(10);
    // Tokens 3 to 6 drawn elsewhere (the same ids): the host's later draws are unchanged.
    const mixed = new DecodeSequence([1], greedy({ sampling, seed: 9 }));
    rows.forEach((r, i) => {
      if (i >= 3 && i < 7) {
        expect(mixed.draws).toBe(i);
        mixed.acceptDrawn(host.ids[i]!, false);
      } else mixed.advance(r.slice(), false);
    });
    expect(mixed.ids).toEqual(host.ids);
    expect(mixed.draws).toBe(10);
    expect(new Set(host.ids).size).toBeGreaterThan(3);
    const g = new DecodeSequence([1], greedy());
    g.advance(oneHot(4), false);
    expect(g.draws).toBe(0);
    expect(() => g.acceptDrawn(4, false)).toThrow('a greedy sequence takes no draws: use accept');
  });

  it('ends from outside: abort shows the held-back text, error does not', () => {
    const aborted = new DecodeSequence([1], greedy({ stopStrings: ['cd'] }));
    aborted.accept(0, false);
    aborted.accept(2, false);
    expect(aborted.text).toBe('a');
    aborted.end('abort');
    expect(aborted.finishReason).toBe('abort');
    expect(aborted.text).toBe('ac');
    const failed = new DecodeSequence([1], greedy({ stopStrings: ['cd'] }));
    failed.accept(2, false);
    const error = new Error('device lost');
    failed.end('error', error);
    expect(failed).toMatchObject({ finishReason: 'error', error, text: '' });
    failed.end('abort');
    expect(failed.finishReason).toBe('error');
  });

  it('has no text without a decode function, but still streams its tokens', () => {
    const s = new Recorded([1], { sampling: {}, seed: 0, maxNewTokens: 2 });
    s.accept(3, false);
    s.accept(4, false);
    expect(s.text).toBe('');
    expect(s.deltas.flatMap((d) => d.tokens.map((t) => t.token))).toEqual([3, 4]);
  });

  it('rejects bad input with precise messages', () => {
    expect(() => new DecodeSequence([], greedy())).toThrow('the prompt must hold at least one token');
    expect(() => new DecodeSequence([1], greedy({ decode: undefined, stopStrings: ['x'] }))).toThrow(
      'stop strings need a tokenizer',
    );
    expect(() => new DecodeSequence([1], greedy({ stopStrings: [''] }))).toThrow(
      'stop strings must not be empty',
    );
    expect(() => new DecodeSequence([1], greedy({ sampling: { temperature: -1 } }))).toThrow(
      'temperature must be >= 0, got -1',
    );
  });
});
