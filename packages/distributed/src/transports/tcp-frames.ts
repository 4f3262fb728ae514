// Length-prefixed binary frames on a TCP stream. A 24-byte little-endian header (kind, seq, step, seg, meta bytes,
// payload bytes), then UTF-8 meta, then the float32 payload in the machine's (little-endian) byte order.

import type { Socket } from 'node:net';
import { endianness } from 'node:os';
import type { Frame, FrameKind } from '../frame.js';
import { giveSegment, takeSegment } from '../segment-pool.js';

const HEADER_BYTES = 24;

if (endianness() !== 'LE') throw new Error('@mptjs/distributed TCP frames assume a little-endian machine');

export function writeFrame(socket: Socket, frame: Frame): void {
  const meta = frame.meta ? Buffer.from(frame.meta, 'utf8') : null;
  const payload = frame.payload;
  const head = Buffer.allocUnsafe(HEADER_BYTES + (meta?.length ?? 0));
  head.writeUInt32LE(frame.kind, 0);
  head.writeUInt32LE(frame.seq >>> 0, 4);
  head.writeUInt32LE(frame.step, 8);
  head.writeUInt32LE(frame.seg, 12);
  head.writeUInt32LE(meta?.length ?? 0, 16);
  head.writeUInt32LE(payload ? payload.byteLength : 0, 20);
  if (meta) meta.copy(head, HEADER_BYTES);
  socket.cork();
  socket.write(head);
  // The payload is ours (the sender gave up ownership), so the socket may hold it until it is flushed; then
  // it goes back to the segment pool.
  if (payload && payload.byteLength > 0) {
    socket.write(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), (err) => {
      if (!err) giveSegment(payload);
    });
  }
  socket.uncork();
}

/** Reassembles frames from stream chunks, copying each payload once, straight into its own Float32Array. */
export class FrameParser {
  private readonly head = Buffer.alloc(HEADER_BYTES);
  private headFill = 0;
  private meta: Buffer | null = null;
  private metaFill = 0;
  private payload: Float32Array | null = null;
  private payloadBytes: Uint8Array | null = null;
  private payloadFill = 0;
  private frame: Frame | null = null;

  constructor(public onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (!this.frame) {
        const take = Math.min(HEADER_BYTES - this.headFill, chunk.length - off);
        chunk.copy(this.head, this.headFill, off, off + take);
        this.headFill += take;
        off += take;
        if (this.headFill < HEADER_BYTES) return;
        this.startFrame();
        if (this.isComplete()) this.finishFrame();
        continue;
      }
      if (this.meta && this.metaFill < this.meta.length) {
        const take = Math.min(this.meta.length - this.metaFill, chunk.length - off);
        chunk.copy(this.meta, this.metaFill, off, off + take);
        this.metaFill += take;
        off += take;
      } else if (this.payloadBytes) {
        const take = Math.min(this.payloadBytes.length - this.payloadFill, chunk.length - off);
        this.payloadBytes.set(chunk.subarray(off, off + take), this.payloadFill);
        this.payloadFill += take;
        off += take;
      }
      if (this.isComplete()) this.finishFrame();
    }
  }

  private startFrame(): void {
    const h = this.head;
    const metaLen = h.readUInt32LE(16);
    const payloadLen = h.readUInt32LE(20);
    if (payloadLen % 4 !== 0) throw new Error(`corrupt frame: payload of ${payloadLen} bytes is not float32`);
    this.frame = {
      kind: h.readUInt32LE(0) as FrameKind,
      seq: h.readUInt32LE(4),
      step: h.readUInt32LE(8),
      seg: h.readUInt32LE(12),
    };
    this.meta = metaLen > 0 ? Buffer.allocUnsafe(metaLen) : null;
    this.metaFill = 0;
    this.payload = payloadLen > 0 ? takeSegment(payloadLen / 4) : null;
    this.payloadBytes = this.payload ? new Uint8Array(this.payload.buffer, 0, payloadLen) : null;
    this.payloadFill = 0;
  }

  private isComplete(): boolean {
    return (
      (!this.meta || this.metaFill === this.meta.length) &&
      (!this.payloadBytes || this.payloadFill === this.payloadBytes.length)
    );
  }

  private finishFrame(): void {
    const f = this.frame!;
    if (this.meta) f.meta = this.meta.toString('utf8');
    if (this.payload) f.payload = this.payload;
    this.frame = null;
    this.headFill = 0;
    this.meta = null;
    this.payload = null;
    this.payloadBytes = null;
    this.onFrame(f);
  }
}
