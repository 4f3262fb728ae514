// Worker-thread entry: opens its own mixer (and tokenizer) and sends batches to the parent, never more than
// `prefetch` ahead of what the parent has consumed.
import { parentPort, workerData } from 'node:worker_threads';
import { mixerBatches } from './batches.js';
import { Mixer } from './mixer.js';
import type { WorkerRequest, WorkerToParent } from './prefetch.js';

async function run(request: WorkerRequest): Promise<void> {
  const port = parentPort!;
  let credits = request.prefetch;
  let wake: (() => void) | undefined;
  port.on('message', (msg: { type: 'credit' }) => {
    if (msg.type === 'credit') {
      credits++;
      wake?.();
    }
  });
  const warn = (message: string): void =>
    port.postMessage({ type: 'warning', message } satisfies WorkerToParent);
  const mixer = await Mixer.open(
    { config: request.config, tokenizer: request.tokenizer, state: request.state, warn },
    { weights: request.weights },
  );
  for await (const batch of mixerBatches(mixer, request.batch)) {
    while (credits === 0)
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    credits--;
    const msg: WorkerToParent = { type: 'batch', batch };
    port.postMessage(msg, [batch.tokens.buffer as ArrayBuffer, batch.streams.buffer as ArrayBuffer]);
  }
  port.postMessage({ type: 'done' } satisfies WorkerToParent);
}

run(workerData as WorkerRequest).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  parentPort!.postMessage({ type: 'error', message } satisfies WorkerToParent);
});
