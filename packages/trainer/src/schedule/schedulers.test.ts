import { describe, expect, it } from 'vitest';
import type { Duration } from '../config/duration.js';
import type { SchedulerConfig } from './registry.js';
import { scheduleMultiplier } from './schedulers.js';

const geometry = { batchSize: 4, seqLen: 8 }; // 32 tokens a batch
const at = (batches: number) => ({ batches, samples: batches * 4, tokens: batches * 32 });
const max: Duration = { value: 110, unit: 'ba' };

function sched(over: Partial<SchedulerConfig>): SchedulerConfig {
  return {
    name: 'cosine_with_warmup',
    tWarmup: { value: 10, unit: 'ba' },
    tMax: { value: 1, unit: 'dur' },
    alphaF: 0.1,
    alphaI: 1,
    ...over,
  };
}

describe('schedulers (Composer semantics)', () => {
  it('cosine_with_warmup: linear warmup from 0, cosine to alpha_f at max_duration', () => {
    const s = sched({});
    expect(scheduleMultiplier(s, at(0), max, geometry)).toBe(0);
    expect(scheduleMultiplier(s, at(5), max, geometry)).toBeCloseTo(0.5, 12);
    expect(scheduleMultiplier(s, at(10), max, geometry)).toBeCloseTo(1, 12);
    // Halfway through the decay: alpha_f + (1 - alpha_f) / 2.
    expect(scheduleMultiplier(s, at(60), max, geometry)).toBeCloseTo(0.55, 12);
    expect(scheduleMultiplier(s, at(35), max, geometry)).toBeCloseTo(
      0.1 + (0.9 * (1 + Math.cos(Math.PI / 4))) / 2,
      12,
    );
    expect(scheduleMultiplier(s, at(110), max, geometry)).toBeCloseTo(0.1, 12);
    expect(scheduleMultiplier(s, at(500), max, geometry)).toBeCloseTo(0.1, 12);
  });

  it('measures warmup and max in tokens when given in tokens', () => {
    const s = sched({ tWarmup: { value: 320, unit: 'tok' } }); // 10 batches
    const maxTok: Duration = { value: 3520, unit: 'tok' }; // 110 batches
    for (const b of [0, 3, 10, 47, 110]) {
      expect(scheduleMultiplier(s, at(b), maxTok, geometry)).toBeCloseTo(
        scheduleMultiplier(sched({}), at(b), max, geometry),
        12,
      );
    }
  });

  it('linear_decay_with_warmup and constant_with_warmup', () => {
    const lin = sched({ name: 'linear_decay_with_warmup', alphaF: 0, alphaI: 1 });
    expect(scheduleMultiplier(lin, at(2), max, geometry)).toBeCloseTo(0.2, 12);
    expect(scheduleMultiplier(lin, at(60), max, geometry)).toBeCloseTo(0.5, 12);
    expect(scheduleMultiplier(lin, at(110), max, geometry)).toBeCloseTo(0, 12);
    const c = sched({ name: 'constant_with_warmup', alphaI: 0.7 });
    expect(scheduleMultiplier(c, at(5), max, geometry)).toBeCloseTo(0.5, 12);
    expect(scheduleMultiplier(c, at(90), max, geometry)).toBeCloseTo(0.7, 12);
  });

  it('t_max in dur fractions and t_warmup of 0', () => {
    const s = sched({ tWarmup: { value: 0, unit: 'ba' }, tMax: { value: 0.5, unit: 'dur' }, alphaF: 0 });
    expect(scheduleMultiplier(s, at(0), max, geometry)).toBe(1);
    expect(scheduleMultiplier(s, at(55), max, geometry)).toBeCloseTo(0, 12);
    expect(scheduleMultiplier(s, at(27.5), max, geometry)).toBeCloseTo(0.5, 12);
  });
});
