import type { Duration } from '../config/duration.js';
import { Registry } from '../config/registry.js';
import { nonNegative, type Section } from '../config/section.js';

/** The `scheduler` section, validated by the entry its `name` chose. */
export interface SchedulerConfig {
  name: string;
  tWarmup: Duration;
  /** Defaults to `1dur` (max_duration). */
  tMax: Duration;
  /** Final multiplier (cosine and linear). */
  alphaF: number;
  /** Start multiplier of the linear decay, and the constant of constant_with_warmup. */
  alphaI: number;
}

/**
 * One warmup schedule: reads its own keys of the `scheduler` section (not `name`), and gives the multiplier after
 * warmup at `f`, the fraction of the way from `t_warmup` to `t_max` (clamped to [0, 1]).
 */
export interface SchedulerEntry {
  read(s: Section, name: string): SchedulerConfig;
  decay(cfg: SchedulerConfig, f: number): number;
}

/** The keys every warmup schedule shares; `alphaKey` is where its start (or constant) multiplier is read. */
function readWarmup(s: Section, name: string, alphaKey: 'alpha' | 'alpha_i'): SchedulerConfig {
  const tWarmup = s.required('t_warmup', (sec, k) => sec.duration(k));
  const tMax = s.duration('t_max') ?? { value: 1, unit: 'dur' };
  const alphaF = s.num('alpha_f', nonNegative, 'a number >= 0') ?? 0;
  const alphaI = s.num(alphaKey, nonNegative, 'a number >= 0') ?? 1;
  s.accept('scale_warmup');
  return { name, tWarmup, tMax, alphaF, alphaI };
}

/** Composer's warmup schedules. */
export const schedulers = new Registry<SchedulerEntry>('scheduler')
  .register('cosine_with_warmup', {
    read: (s, name) => readWarmup(s, name, 'alpha_i'),
    decay: (cfg, f) => cfg.alphaF + ((1 - cfg.alphaF) * (1 + Math.cos(Math.PI * f))) / 2,
  })
  .register('linear_decay_with_warmup', {
    read: (s, name) => readWarmup(s, name, 'alpha_i'),
    decay: (cfg, f) => cfg.alphaI + (cfg.alphaF - cfg.alphaI) * f,
  })
  .register('constant_with_warmup', {
    read: (s, name) => readWarmup(s, name, 'alpha'),
    decay: (cfg) => cfg.alphaI,
  });
