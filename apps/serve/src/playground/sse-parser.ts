/**
 * Incremental Server-Sent Events parsing: feed text as it arrives, get each complete event's `data` back.
 * Shared by the playground (in the browser) and its tests.
 */
export class SseParser {
  private buffer = '';

  /** Returns the data of every event completed by `chunk` (multi-line data joined with newlines). */
  push(chunk: string): string[] {
    this.buffer += chunk.replace(/\r\n?/g, '\n');
    const events: string[] = [];
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''));
      if (data.length > 0) events.push(data.join('\n'));
    }
    return events;
  }
}
