// A link over a TCP socket, after the hello handshake has said which rank is on the other end.
import type { Socket } from 'node:net';
import { BufferedLink, type Frame } from '../frame.js';
import { type FrameParser, writeFrame } from './tcp-frames.js';

export class SocketLink extends BufferedLink {
  constructor(
    peer: number,
    private readonly socket: Socket,
    parser: FrameParser,
  ) {
    super(peer);
    parser.onFrame = (f) => this.deliver(f);
    socket.on('close', () => this.closed('closed its connection (process exited or crashed)'));
    socket.on('error', () => undefined); // 'close' follows and reports it
  }

  send(frame: Frame): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    writeFrame(this.socket, frame);
  }

  close(): void {
    this.closing = true;
    this.socket.end();
    // Do not wait forever for a peer that never closes its side.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}
