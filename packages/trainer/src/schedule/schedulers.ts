import {
  type BatchGeometry,
  convertDuration,
  type Duration,
  type Timestamp,
  timestampValue,
} from '../config/duration.js';
import { type SchedulerConfig, schedulers } from './registry.js';

/**
 * The learning-rate multiplier at timestamp `t` (what has been trained so far, so the first batch sees t = 0),
 * with Composer's semantics:
 * - warmup: linear from 0 at t = 0 to 1 at t_warmup;
 * - cosine_with_warmup (the entries of `schedulers`): `alpha_f + (1 - alpha_f) * (1 + cos(pi * f)) / 2`;
 * - linear_decay_with_warmup: `alpha_i + (alpha_f - alpha_i) * f`;
 * - constant_with_warmup: `alpha`;
 * where `f = (t - t_warmup) / (t_max - t_warmup)` clamped to [0, 1] and t_max defaults to max_duration.
 */
export function scheduleMultiplier(
  cfg: SchedulerConfig,
  t: Timestamp,
  maxDuration: Duration,
  geometry: BatchGeometry,
): number {
  const unit = cfg.tWarmup.unit === 'dur' ? (maxDuration.unit as 'ba' | 'tok' | 'sp') : cfg.tWarmup.unit;
  const warmup = convertDuration(cfg.tWarmup, unit, maxDuration, geometry);
  const tMax = convertDuration(cfg.tMax, unit, maxDuration, geometry);
  const now = timestampValue(t, unit);
  if (now < warmup) return now / warmup;
  const f = tMax > warmup ? Math.min(1, Math.max(0, (now - warmup) / (tMax - warmup))) : 1;
  return schedulers.get(cfg.name).decay(cfg, f);
}
