export {
  type ChatMessage,
  type ChatTemplate,
  jinjaChatTemplate,
  loadChatTemplate,
  PLAIN_CHAT_TEMPLATE,
} from './chat/template.js';
export { runGeneration } from './commands/generate.js';
export {
  type ChosenEngine,
  chooseDecodeEngine,
  DECODE_ENGINES,
  type DecodeEngineChoice,
} from './engine/choose-engine.js';
export { EngineProbe } from './engine/engine-probe.js';
export { JsonTokenizer } from './engine/json-tokenizer.js';
export { MptEngine } from './engine/mpt-engine.js';
export { RecordedEngine } from './engine/recorded-engine.js';
export type {
  DecodedRow,
  Engine,
  EngineSequence,
  ModelInfo,
  RowChoice,
  TextTokenizer,
} from './engine/types.js';
export { ApiError } from './errors.js';
export { Generation, type GenerationParams } from './generation/generation.js';
export { DEFAULT_LIMITS, type RequestLimits } from './http/limits.js';
export { DEFAULT_TIMEOUTS, type HttpOptions, ServeHttpServer } from './http/server.js';
export { ServeMetrics } from './metrics.js';
export { type LoadedModel, loadModel, resolveModelDir } from './model/load-model.js';
export { buildProgram, runCli } from './program.js';
export {
  EngineFailedError,
  QueueFullError,
  Scheduler,
  type SchedulerOptions,
  TooManySequencesError,
} from './scheduler/scheduler.js';
export { createServeApp, type ServeAppOptions } from './serve-app.js';
