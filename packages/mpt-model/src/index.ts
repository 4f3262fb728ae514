export { type AttnImpl, ConfigError, type ModelType, type MPTConfig, type NormType, parseMptConfig, toMptConfigJson } from './config.js';
export { expectedParameterShapes, type HostTensor, type StateDict } from './state-dict.js';
