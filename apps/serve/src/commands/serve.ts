import type { BackendRequest } from '@mptjs/alibi-attention';
import type { QuantizeMode } from '@mptjs/mpt-model';
import type { Command } from 'commander';
import { loadModel } from '../model/load-model.js';
import { createServeApp, DEFAULT_MAX_BODY_BYTES } from '../serve-app.js';
import { addBackendOption, addQuantizeOption, intOption, numberOption } from './options.js';

interface ServeOptions {
  host: string;
  port: number;
  backend: BackendRequest;
  apiKey?: string;
  maxBatch: number;
  maxQueue: number;
  maxBodyBytes: number;
  shutdownGrace: number;
  tokenizer?: string;
  modelName?: string;
  quantize?: QuantizeMode;
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
  addQuantizeOption(addBackendOption(command)).action(async (model: string, options: ServeOptions) => {
    const loaded = await loadModel(model, {
      backend: options.backend,
      tokenizer: options.tokenizer,
      quantize: options.quantize,
    });
    const app = createServeApp({
      engine: loaded.engine,
      tokenizer: loaded.tokenizer,
      modelId: options.modelName ?? loaded.modelId,
      templateDirs: [loaded.modelDir, loaded.tokenizerDir],
      apiKey: options.apiKey ?? process.env['MPTJS_API_KEY'] ?? undefined,
      maxBatch: options.maxBatch,
      maxQueue: options.maxQueue,
      maxBodyBytes: options.maxBodyBytes,
    });
    const address = await app.listen(options.port, options.host);
    const loopback = ['127.0.0.1', '::1', 'localhost'].includes(options.host);
    if (!loopback && !app.options.apiKey) {
      process.stderr.write(
        `[mptjs] warning: listening on ${options.host} without --api-key: anyone who can reach it can use it\n`,
      );
    }
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    process.stderr.write(`[mptjs] chat template: ${app.ctx.chatTemplate.source}\n`);
    process.stderr.write(`[mptjs] serving ${app.ctx.modelId} on http://${host}:${address.port}\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        process.stderr.write(`[mptjs] ${signal}: finishing in-flight requests, refusing new ones\n`);
        app
          .shutdown(options.shutdownGrace * 1000)
          .catch((err) => process.stderr.write(`[mptjs] shutdown: ${(err as Error).message}\n`))
          .finally(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    loaded.engine.dispose();
    process.stderr.write('[mptjs] stopped\n');
  });
}
