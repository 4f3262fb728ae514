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
export { formatResolvedConfig, type LoadedConfig, loadTrainConfig, parseTrainConfig } from './load.js';
export type { ModelSectionConfig } from './model-section.js';
export { applyOverrides } from './overrides.js';
export { Registry } from './registry.js';
export { type TrainConfig, validateTrainConfig } from './schema.js';
