// A link over a MessagePort: between worker threads, or between groups in one thread. Payload buffers are
// transferred (moved, not copied) to the receiving thread.
import type { MessagePort } from 'node:worker_threads';
import { BufferedLink, type Frame, ownedPayload } from '../frame.js';

export class PortLink extends BufferedLink {
  constructor(
    peer: number,
    private readonly port: MessagePort,
  ) {
    super(peer);
    port.on('message', (f: Frame) => this.deliver(f));
    port.on('close', () => this.closed('closed its connection (its thread exited or crashed)'));
  }

  send(frame: Frame): void {
    if (frame.payload) {
      const payload = ownedPayload(frame.payload);
      this.port.postMessage({ ...frame, payload }, [payload.buffer as ArrayBuffer]);
    } else this.port.postMessage(frame);
  }

  close(): void {
    this.closing = true;
    this.port.close();
  }
}
