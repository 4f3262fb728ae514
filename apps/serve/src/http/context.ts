import type { ChatTemplate } from '../chat/template.js';
import type { Engine, TextTokenizer } from '../engine/types.js';
import type { ServeMetrics } from '../metrics.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { RequestLimits } from './limits.js';

/** Everything a request handler needs. */
export interface ServeContext {
  engine: Engine;
  tokenizer: TextTokenizer | undefined;
  scheduler: Scheduler;
  metrics: ServeMetrics;
  /** The name clients use in `model` (and `/v1/models` lists). */
  modelId: string;
  chatTemplate: ChatTemplate;
  /** Unix seconds the model was loaded. */
  createdAt: number;
  /** What one request may ask for. */
  limits: RequestLimits;
}
