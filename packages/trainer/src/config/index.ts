export {
  type BatchGeometry,
  convertDuration,
  type Duration,
  type DurationUnit,
  formatDuration,
  parseDuration,
  reached,
  type Timestamp,
} from './duration.js';
export { TrainConfigError } from './errors.js';
export { interpolate } from './interpolate.js';
export { formatResolvedConfig, type LoadedConfig, loadTrainConfig, parseTrainConfig } from './load.js';
export { applyOverrides } from './overrides.js';
export type {
  LoaderConfig,
  ModelSectionConfig,
  OptimizerConfig,
  OptimizerName,
  SchedulerConfig,
  SchedulerName,
  StreamConfig,
  TrainConfig,
} from './schema.js';
export { validateTrainConfig } from './schema.js';
