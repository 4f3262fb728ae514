import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../random.js';
import { applyRepetitionPenalty, argMax, sampleToken, validateSampling } from './sampling.js';

function histogram(
  logits: number[],
  options: Parameters<typeof sampleToken>[1],
  draws: number,
  seed = 1,
): number[] {
  const rng = new SeededRandom(seed);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampleToken(Float32Array.from(logits), options, rng)]++;
  return counts.map((c) => c / draws);
}

describe('SeededRandom', () => {
  it('repeats for a seed, differs across seeds, and is uniform in [0, 1)', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const xs = Array.from({ length: 20000 }, () => a.next());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b.next()));
    expect(new SeededRandom(43).next()).not.toBe(xs[0]);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 2);
    const normal = new SeededRandom(1).fillNormal(new Float32Array(20001), 2);
    const mean = normal.reduce((s, x) => s + x, 0) / normal.length;
    expect(mean).toBeCloseTo(0, 1);
    expect(Math.sqrt(normal.reduce((s, x) => s + (x - mean) ** 2, 0) / normal.length)).toBeCloseTo(2, 1);
  });
});

describe('sampleToken', () => {
  const logits = [1, 3, 2, 0.5, 2.9];

  it('is greedy by default and with temperature 0', () => {
    const rng = new SeededRandom(0);
    expect(sampleToken(Float32Array.from(logits), {}, rng)).toBe(1);
    expect(sampleToken(Float32Array.from(logits), { temperature: 0, topK: 2 }, rng)).toBe(1);
    expect(argMax([0, 5, 5])).toBe(1);
  });

  it('samples from softmax(logits / T)', () => {
    const freq = histogram(logits, { temperature: 2 }, 40000);
    const e = logits.map((l) => Math.exp(l / 2));
    const z = e.reduce((a, b) => a + b, 0);
    for (const [i, p] of e.entries()) expect(freq[i]).toBeCloseTo(p / z, 2);
  });

  it('keeps only the top k, and the smallest nucleus reaching top p', () => {
    expect(histogram(logits, { temperature: 1, topK: 2 }, 2000).map((f) => f > 0)).toEqual([
      false,
      true,
      false,
      false,
      true,
    ]);
    // Probabilities at T=1: token 1 ~0.38, token 4 ~0.35, token 2 ~0.14: p=0.5 keeps {1, 4}; p=0.8 adds 2.
    expect(histogram(logits, { temperature: 1, topP: 0.5 }, 2000).map((f) => f > 0)).toEqual([
      false,
      true,
      false,
      false,
      true,
    ]);
    expect(histogram(logits, { temperature: 1, topP: 0.8 }, 2000).map((f) => f > 0)).toEqual([
      false,
      true,
      true,
      false,
      true,
    ]);
  });

  it('penalizes repeated tokens the Hugging Face way', () => {
    const l = Float32Array.from([2, -2, 1]);
    applyRepetitionPenalty(l, [0, 1, 1], 2);
    expect(Array.from(l)).toEqual([1, -4, 1]);
    expect(
      sampleToken(Float32Array.from([3, 2.5]), { repetitionPenalty: 1.5 }, new SeededRandom(0), [0]),
    ).toBe(1);
  });

  it('rejects bad options precisely', () => {
    expect(() => validateSampling({ temperature: -1 })).toThrow('temperature must be >= 0, got -1');
    expect(() => validateSampling({ topK: 1.5 })).toThrow('topK must be a non-negative integer, got 1.5');
    expect(() => validateSampling({ topP: 0 })).toThrow('topP must be in (0, 1], got 0');
    expect(() => validateSampling({ repetitionPenalty: 0 })).toThrow('repetitionPenalty must be > 0, got 0');
  });
});
