import type { ServerResponse } from 'node:http';
import { ApiError } from '../errors.js';
import type { Generation } from '../generation/generation.js';
import { throwIfFailed, usageOf } from './run-choices.js';

/** Server-Sent Events in OpenAI's style: `data: <json>\n\n` per event, ending with `data: [DONE]`. */
export class SseStream {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  send(data: unknown): void {
    if (this.open) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.open) return;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }
}

/** Waits for the generations, then ends the stream with usage (or an error event) and `[DONE]`. */
export async function streamToEnd(
  sse: SseStream,
  pending: Promise<Generation[]>,
  prompts: readonly (readonly number[])[],
  includeUsage: boolean,
  chunk: (choices: unknown[], extra?: Record<string, unknown>) => unknown,
): Promise<number> {
  try {
    const generations = await pending;
    throwIfFailed(generations);
    if (includeUsage) sse.send(chunk([], { usage: usageOf(prompts, generations) }));
  } catch (err) {
    const e = err instanceof ApiError ? err : new ApiError(500, (err as Error).message, 'server_error');
    sse.send(e.toJSON());
  }
  sse.end();
  return 200;
}
