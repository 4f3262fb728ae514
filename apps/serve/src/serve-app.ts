import { fileURLToPath } from 'node:url';
import { type ChatTemplate, loadChatTemplate } from './chat/template.js';
import { EngineProbe } from './engine/engine-probe.js';
import type { Engine, TextTokenizer } from './engine/types.js';
import type { ServeContext } from './http/context.js';
import { DEFAULT_LIMITS, type RequestLimits } from './http/limits.js';
import { type HttpOptions, ServeHttpServer } from './http/server.js';
import { ServeMetrics } from './metrics.js';
import { Scheduler } from './scheduler/scheduler.js';

export interface ServeAppOptions extends Omit<HttpOptions, 'maxBodyBytes' | 'playgroundDir'> {
  engine: Engine;
  tokenizer: TextTokenizer | undefined;
  modelId: string;
  /** Directories searched (in order) for a `tokenizer_config.json` with a chat template. */
  templateDirs?: readonly (string | undefined)[];
  chatTemplate?: ChatTemplate;
  maxBatch?: number;
  maxQueue?: number;
  maxBodyBytes?: number;
  /** Per-request limits; each one left out keeps its default (`DEFAULT_LIMITS`). */
  limits?: Partial<RequestLimits>;
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
  const probe = new EngineProbe(options.engine);
  let server: ServeHttpServer | undefined;
  const scheduler = new Scheduler(
    options.engine,
    { maxBatch: options.maxBatch ?? 8, maxQueue: options.maxQueue ?? 64 },
    {
      onStats: (stats) => metrics.updateScheduler(stats),
      probe: () => probe.check(),
      onEngineFailed: (error) => {
        metrics.engineFailures.set(1);
        server?.markEngineFailed(error);
      },
    },
  );
  const limits: RequestLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(options.limits ?? {})) {
    if (value !== undefined) (limits as unknown as Record<string, unknown>)[key] = value;
  }
  const ctx: ServeContext = {
    engine: options.engine,
    tokenizer: options.tokenizer,
    scheduler,
    metrics,
    modelId: options.modelId,
    chatTemplate: options.chatTemplate ?? loadChatTemplate(...(options.templateDirs ?? [])),
    createdAt: Math.floor(Date.now() / 1000),
    limits,
  };
  server = new ServeHttpServer(ctx, {
    apiKey: options.apiKey,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    playgroundDir: options.playgroundDir ?? defaultPlaygroundDir(),
    corsOrigins: options.corsOrigins,
    headersTimeoutMs: options.headersTimeoutMs,
    bodyTimeoutMs: options.bodyTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    maxConnections: options.maxConnections,
  });
  metrics.engineFailures.set(0);
  return server;
}
