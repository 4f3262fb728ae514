import { type BackendRequest, releaseWebGpuDevice } from '@mptjs/kernels';
import type { QuantizeMode, WeightFormat } from '@mptjs/mpt-model';
import { type Command, InvalidArgumentError } from 'commander';
import { chooseDecodeEngine, type DecodeEngineChoice } from '../engine/choose-engine.js';
import { DEFAULT_LIMITS } from '../http/limits.js';
import { parseCorsOrigin } from '../http/origin.js';
import { DEFAULT_TIMEOUTS, type ServeHttpServer } from '../http/server.js';
import { loadModel } from '../model/load-model.js';
import { createServeApp, DEFAULT_MAX_BODY_BYTES } from '../serve-app.js';
import {
  addBackendOption,
  addDecodeEngineOption,
  addDecodeWeightsOption,
  addQuantizeOption,
  intOption,
  numberOption,
} from './options.js';

interface ServeOptions {
  host: string;
  port: number;
  backend: BackendRequest;
  apiKey?: string;
  maxBatch: number;
  maxQueue: number;
  maxBodyBytes: number;
  maxPrompts: number;
  maxPromptBytes: number;
  maxPromptTokens: number;
  maxTokens?: number;
  maxN: number;
  corsOrigin: string[];
  headersTimeout: number;
  bodyTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number;
  shutdownGrace: number;
  tokenizer?: string;
  modelName?: string;
  quantize?: QuantizeMode;
  decodeEngine: DecodeEngineChoice;
  decodeWeights: WeightFormat;
}

export function addServeCommand(program: Command): void {
  const command = program
    .command('serve')
    .description('Serve the model over an OpenAI-compatible HTTP API, with a playground page at /.')
    .argument('<model>', 'model directory or hub id (org/name[@rev])')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', intOption(0, 65535), 8080)
    .option('--api-key <key>', 'require Authorization: Bearer <key> on /v1/* (default: $MPTJS_API_KEY)')
    .option('--max-batch <n>', 'most sequences decoded together', intOption(1, 1024), 8)
    .option(
      '--max-queue <n>',
      'most sequences waiting for a batch slot (then 429)',
      intOption(0, 1_000_000),
      64,
    )
    .option(
      '--max-body-bytes <n>',
      'largest request body (then 413)',
      intOption(1024),
      DEFAULT_MAX_BODY_BYTES,
    )
    .option(
      '--max-prompts <n>',
      'most prompts in one completions request (then 413)',
      intOption(1, 1_000_000),
      DEFAULT_LIMITS.maxPrompts,
    )
    .option(
      '--max-prompt-bytes <n>',
      'most UTF-8 bytes of prompt text in one request, checked before tokenizing (then 413)',
      intOption(1),
      DEFAULT_LIMITS.maxPromptBytes,
    )
    .option(
      '--max-prompt-tokens <n>',
      'most prompt tokens in one request, all prompts together (then 413)',
      intOption(1),
      DEFAULT_LIMITS.maxPromptTokens,
    )
    .option(
      '--max-tokens <n>',
      "largest max_tokens a request may ask for (then 400; default: the model's max_seq_len)",
      intOption(1),
    )
    .option(
      '--max-n <n>',
      'largest n (choices per prompt; then 400)',
      intOption(1, 1024),
      DEFAULT_LIMITS.maxN,
    )
    .option(
      '--cors-origin <origin>',
      'a browser origin allowed to call the API besides the server itself (repeatable; * for any); others get 403',
      (value: string, previous: string[]) => [...previous, parseOriginOption(value)],
      [] as string[],
    )
    .option(
      '--headers-timeout <s>',
      'seconds a client has to send the request headers',
      numberOption(0, 3600, true),
      DEFAULT_TIMEOUTS.headersTimeoutMs / 1000,
    )
    .option(
      '--body-timeout <s>',
      'seconds a client has to send the request body (then 408)',
      numberOption(0, 3600, true),
      DEFAULT_TIMEOUTS.bodyTimeoutMs / 1000,
    )
    .option(
      '--keep-alive-timeout <s>',
      'seconds an idle keep-alive connection stays open',
      numberOption(0, 3600, true),
      DEFAULT_TIMEOUTS.keepAliveTimeoutMs / 1000,
    )
    .option(
      '--max-connections <n>',
      'most open connections; more are closed at once',
      intOption(1, 1_000_000),
      DEFAULT_TIMEOUTS.maxConnections,
    )
    .option(
      '--shutdown-grace <s>',
      'seconds in-flight requests get to finish on SIGTERM',
      numberOption(0, 3600),
      30,
    )
    .option(
      '--tokenizer <path>',
      "tokenizer.json (default: the model directory's, else the config's tokenizer_name)",
    )
    .option('--model-name <name>', 'model name clients use (default: the hub id or directory name)');
  addDecodeWeightsOption(addDecodeEngineOption(addQuantizeOption(addBackendOption(command)))).action(
    async (model: string, options: ServeOptions) => {
      const loaded = await loadModel(model, {
        backend: options.backend,
        tokenizer: options.tokenizer,
        quantize: options.quantize,
      });
      const { engine, maxBatch } = await chooseDecodeEngine(loaded.engine, {
        choice: options.decodeEngine,
        weights: options.decodeWeights,
        backend: loaded.backend.name,
        maxBatch: options.maxBatch,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const app = createServeApp({
        engine,
        tokenizer: loaded.tokenizer,
        modelId: options.modelName ?? loaded.modelId,
        templateDirs: [loaded.modelDir, loaded.tokenizerDir],
        apiKey: options.apiKey ?? process.env['MPTJS_API_KEY'] ?? undefined,
        maxBatch,
        maxQueue: options.maxQueue,
        maxBodyBytes: options.maxBodyBytes,
        limits: {
          maxPrompts: options.maxPrompts,
          maxPromptBytes: options.maxPromptBytes,
          maxPromptTokens: options.maxPromptTokens,
          maxTokens: options.maxTokens,
          maxN: options.maxN,
        },
        corsOrigins: options.corsOrigin,
        headersTimeoutMs: options.headersTimeout * 1000,
        bodyTimeoutMs: options.bodyTimeout * 1000,
        keepAliveTimeoutMs: options.keepAliveTimeout * 1000,
        maxConnections: options.maxConnections,
      });
      const address = await app.listen(options.port, options.host);
      const loopback = ['127.0.0.1', '::1', 'localhost'].includes(options.host);
      if (!loopback && !app.options.apiKey) {
        process.stderr.write(
          `[mptjs] warning: listening on ${options.host} without --api-key: anyone who can reach it can use it\n`,
        );
      }
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      // The signal handlers go in before the line a supervisor waits for: a SIGTERM that came before them would
      // kill the process outright instead of shutting it down.
      const stopped = runUntilStopped(app, options.shutdownGrace * 1000);
      process.stderr.write(`[mptjs] chat template: ${app.ctx.chatTemplate.source}\n`);
      process.stderr.write(`[mptjs] serving ${app.ctx.modelId} on http://${host}:${address.port}\n`);
      const failure = await stopped;
      if (failure) {
        // Should anything still hold the event loop (a stuck backend call), exit anyway: this timer does not keep
        // the process alive, it only fires if something else does.
        setTimeout(() => process.exit(1), 5000).unref();
        throw new Error(
          `the model engine failed (${failure.message}); exiting so a supervisor can restart the server`,
        );
      }
      engine.dispose();
      // On webgpu, end with the device released rather than torn down busy at exit (which could crash the process).
      await releaseWebGpuDevice();
      process.stderr.write('[mptjs] stopped\n');
    },
  );
}

/**
 * Serves until SIGTERM / SIGINT (then a graceful shutdown; resolves undefined) or until the engine is found broken
 * (then the server closes at once and this resolves with the error, for the caller to exit non-zero). A broken
 * engine is not rebuilt in place: a wasm abort can leave its heap and tfjs's state corrupt, and a fresh process
 * started by the supervisor is the one state known to be good.
 */
export function runUntilStopped(app: ServeHttpServer, graceMs: number): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`[mptjs] ${signal}: finishing in-flight requests, refusing new ones\n`);
      app
        .shutdown(graceMs)
        .catch((err) => process.stderr.write(`[mptjs] shutdown: ${(err as Error).message}\n`))
        .finally(() => resolve(undefined));
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
    void app.engineFailed().then(async (error) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      await app.shutdown(1000).catch(() => {});
      resolve(error);
    });
  });
}

function parseOriginOption(value: string): string {
  try {
    return parseCorsOrigin(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--cors-origin \S+: /, ''));
  }
}
