import type { ServerResponse } from 'node:http';

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
