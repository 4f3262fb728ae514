import { fileURLToPath } from 'node:url';
import { type ChatTemplate, loadChatTemplate } from './chat/template.js';
import type { Engine, TextTokenizer } from './engine/types.js';
import type { ServeContext } from './http/context.js';
import { ServeHttpServer } from './http/server.js';
import { ServeMetrics } from './metrics.js';
import { Scheduler } from './scheduler/scheduler.js';

export interface ServeAppOptions {
  engine: Engine;
  tokenizer: TextTokenizer | undefined;
  modelId: string;
  /** Directories searched (in order) for a `tokenizer_config.json` with a chat template. */
  templateDirs?: readonly (string | undefined)[];
  chatTemplate?: ChatTemplate;
  apiKey?: string | undefined;
  maxBatch?: number;
  maxQueue?: number;
  maxBodyBytes?: number;
  /** Built playground directory; defaults to `playground/` beside this module (dist/playground). */
  playgroundDir?: string | undefined;
}

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

/** The default location of the built playground: `dist/playground/` next to the bundled entry points. */
export function defaultPlaygroundDir(): string {
  return fileURLToPath(new URL('./playground/', import.meta.url));
}

/** Wires engine, scheduler, metrics and HTTP server together (listen with `.listen(port, host)`). */
export function createServeApp(options: ServeAppOptions): ServeHttpServer {
  const metrics = new ServeMetrics();
  const scheduler = new Scheduler(
    options.engine,
    { maxBatch: options.maxBatch ?? 8, maxQueue: options.maxQueue ?? 64 },
    { onStats: (stats) => metrics.updateScheduler(stats) },
  );
  const ctx: ServeContext = {
    engine: options.engine,
    tokenizer: options.tokenizer,
    scheduler,
    metrics,
    modelId: options.modelId,
    chatTemplate: options.chatTemplate ?? loadChatTemplate(...(options.templateDirs ?? [])),
    createdAt: Math.floor(Date.now() / 1000),
  };
  return new ServeHttpServer(ctx, {
    apiKey: options.apiKey,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    playgroundDir: options.playgroundDir ?? defaultPlaygroundDir(),
  });
}
