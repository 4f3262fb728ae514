import { TrainConfigError } from './errors.js';

/** Composer time units: batches, tokens, samples, or a fraction of `max_duration`. */
export type DurationUnit = 'ba' | 'tok' | 'sp' | 'dur';

export interface Duration {
  value: number;
  unit: DurationUnit;
}

const PATTERN = /^\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)\s*(ba|tok|sp|dur)\s*$/i;

/** Parses `"100ba"`, `"2000tok"`, `"64sp"`, `"0.1dur"`; `key` names the config path in errors. */
export function parseDuration(value: unknown, key: string): Duration {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return { value, unit: 'ba' };
  if (typeof value !== 'string') {
    throw new TrainConfigError(
      `config key "${key}" must be a duration like "100ba" or "1000tok", got ${JSON.stringify(value)}`,
    );
  }
  const m = PATTERN.exec(value);
  if (!m) {
    throw new TrainConfigError(
      `config key "${key}" must be a duration like "100ba", "1000tok", "64sp" or "0.5dur", got ${JSON.stringify(value)}`,
    );
  }
  const unit = m[2]!.toLowerCase() as DurationUnit;
  const num = Number(m[1]);
  if (unit !== 'dur' && !Number.isInteger(num)) {
    throw new TrainConfigError(
      `config key "${key}" must be a whole number of ${unit}, got ${JSON.stringify(value)}`,
    );
  }
  return { value: num, unit };
}

export function formatDuration(d: Duration): string {
  return `${d.value}${d.unit}`;
}

/** Where training stands, in every unit a duration can be measured in. */
export interface Timestamp {
  batches: number;
  samples: number;
  tokens: number;
}

/** Global batch size and sequence length: what converts batches, samples and tokens into each other. */
export interface BatchGeometry {
  batchSize: number;
  seqLen: number;
}

/** Converts a duration into `unit` (`dur` resolves against max_duration). */
export function convertDuration(
  d: Duration,
  unit: Exclude<DurationUnit, 'dur'>,
  max: Duration,
  geometry: BatchGeometry,
): number {
  if (d.unit === 'dur') {
    if (max.unit === 'dur') throw new Error('max_duration cannot be in "dur"');
    return convertDuration({ value: d.value * max.value, unit: max.unit }, unit, max, geometry);
  }
  const perBatch = { ba: 1, sp: geometry.batchSize, tok: geometry.batchSize * geometry.seqLen };
  return (d.value / perBatch[d.unit]) * perBatch[unit];
}

/** The timestamp's value in the given unit (`dur` is not a unit a timestamp has). */
export function timestampValue(t: Timestamp, unit: Exclude<DurationUnit, 'dur'>): number {
  return unit === 'ba' ? t.batches : unit === 'sp' ? t.samples : t.tokens;
}

/** True once `t` has reached duration `d` (`d` must not be in `dur`). */
export function reached(t: Timestamp, d: Duration): boolean {
  if (d.unit === 'dur') throw new Error('reached() needs a duration converted out of "dur"');
  return timestampValue(t, d.unit) >= d.value;
}
