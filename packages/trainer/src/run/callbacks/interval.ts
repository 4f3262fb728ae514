import {
  type BatchGeometry,
  convertDuration,
  type Duration,
  type Timestamp,
  timestampValue,
} from '../../config/duration.js';

/** Whether a run crossed a multiple of `interval` between two timestamps (`dur` counts in max_duration's unit). */
export function crossed(
  interval: Duration,
  before: Timestamp,
  after: Timestamp,
  max: Duration,
  geometry: BatchGeometry,
): boolean {
  const unit = interval.unit === 'dur' ? (max.unit as 'ba' | 'tok' | 'sp') : interval.unit;
  const every = convertDuration(interval, unit, max, geometry);
  if (!(every > 0)) return false;
  return Math.floor(timestampValue(after, unit) / every) > Math.floor(timestampValue(before, unit) / every);
}
