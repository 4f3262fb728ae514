// Parent side of the worker pipeline: an async iterator over batches a worker thread tokenises and packs.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BatchOptions, MixerBatch } from './batches.js';
import type { MixerConfig } from './config.js';
import type { MixerState } from './mixer.js';
import type { TokenizerSpec } from './tokenizer.js';

export interface WorkerRequest {
  config: MixerConfig;
  tokenizer: TokenizerSpec;
  state?: MixerState;
  /** The weights the parent's mixer computed (and warned about): not recomputed in the worker. */
  weights: number[];
  batch: BatchOptions;
  prefetch: number;
}

export type WorkerToParent =
  | { type: 'batch'; batch: MixerBatch }
  | { type: 'done' }
  | { type: 'warning'; message: string }
  | { type: 'error'; message: string };

/** The built worker script: next to this module in dist/, or dist/ when running from the sources (tests). */
function workerScript(): URL {
  for (const candidate of ['./worker.js', '../dist/worker.js']) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  throw new Error(
    'data-mixer worker script not found: build the package (pnpm --filter @mptjs/data-mixer build)',
  );
}

export async function* prefetchBatches(
  request: WorkerRequest,
  warn: (message: string) => void = console.warn,
): AsyncGenerator<MixerBatch> {
  const worker = new Worker(workerScript(), { workerData: request });
  const queue: Exclude<WorkerToParent, { type: 'warning' }>[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  worker.on('message', (msg: WorkerToParent) => {
    if (msg.type === 'warning') {
      warn(msg.message);
      return;
    }
    queue.push(msg);
    wake?.();
  });
  worker.on('error', (err) => {
    failure = err;
    wake?.();
  });
  worker.on('exit', (code) => {
    if (code !== 0) failure ??= new Error(`data-mixer worker exited with code ${code}`);
    wake?.();
  });
  try {
    while (true) {
      while (queue.length === 0 && !failure)
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      const msg = queue.shift();
      if (!msg) throw failure!;
      if (msg.type === 'error') throw new Error(msg.message);
      if (msg.type === 'done') return;
      worker.postMessage({ type: 'credit' });
      yield msg.batch;
    }
  } finally {
    await worker.terminate();
  }
}
