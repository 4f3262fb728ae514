// A link between ranks in one process (worker threads, or groups in one thread) over shared memory: each direction
// is a single-producer single-consumer ring of fixed-size slots in a SharedArrayBuffer. The sender copies a
// frame's payload straight from the caller's buffer into a slot (one memcpy) and bumps a counter; the receiver
// hands the ring algorithm a view of the slot (no copy) and frees the slot when the algorithm releases it.
// Waiting uses Atomics.waitAsync, so a rank's event loop keeps running. Data goes one way round the ring, so a
// link has a ring in one direction only. A MessagePort beside it reports the peer's thread exiting (shared memory
// cannot), and carries the control frames (abort, bye), which must not queue behind data a stalled peer is not
// reading, and the rare frame too big for a slot.
import type { MessagePort } from 'node:worker_threads';
import { waitAsync } from '../atomics-wait.js';
import { BufferedLink, type Frame, FrameKind } from '../frame.js';
import { copySegment, giveSegment } from '../segment-pool.js';
import { PortLink } from './port-link.js';

/** Control words at the start of the buffer: frames written so far, frames released so far (both wrap). */
const HEAD = 0;
const TAIL = 1;
const CONTROL_BYTES = 64;
/** Per slot: kind, seq, step, seg, meta bytes, payload floats. */
const SLOT_HEADER_BYTES = 32;
/** Room for a frame's JSON meta (op headers, abort reasons); longer meta goes over the port. */
const META_BYTES = 4096;
const DEFAULT_SLOTS = 8;

/** One direction of a link: what both ends need to agree on. Post it to a worker as is (the memory is shared). */
export interface SharedRing {
  buffer: SharedArrayBuffer;
  slots: number;
  /** Payload floats one slot holds. */
  slotElements: number;
}

/** A ring for frames of up to `slotElements` floats; `slots` must be a power of two. */
export function createSharedRing(slotElements: number, slots = DEFAULT_SLOTS): SharedRing {
  if (!Number.isInteger(slotElements) || slotElements < 1)
    throw new RangeError(`slotElements must be a positive integer, got ${slotElements}`);
  if (!Number.isInteger(slots) || slots < 2 || (slots & (slots - 1)) !== 0)
    throw new RangeError(`slots must be a power of two >= 2, got ${slots}`);
  const buffer = new SharedArrayBuffer(CONTROL_BYTES + slots * slotBytes(slotElements));
  return { buffer, slots, slotElements };
}

function slotBytes(slotElements: number): number {
  return SLOT_HEADER_BYTES + META_BYTES + slotElements * 4;
}

interface Queued {
  frame: Frame;
  /** Frames queued while the ring was full own a private copy of their payload. */
  payload: Float32Array | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SharedMemoryLink extends BufferedLink {
  private readonly outCtl: Int32Array | null;
  private readonly inCtl: Int32Array | null;
  private readonly port: PortLink;
  private readonly queue: Queued[] = [];
  private draining = false;
  /** Frames of the incoming ring delivered so far (the next slot to read), and those released out of order. */
  private readPos = 0;
  private readonly freedEarly = new Set<number>();
  /** Set by close(): stop reading. (A peer that closed may have left frames this side still reads.) */
  private stopped = false;

  /** `out`: the ring this side writes (data to the peer); `inbound`: the ring it reads. */
  constructor(
    peer: number,
    port: MessagePort,
    private readonly out: SharedRing | undefined,
    inbound: SharedRing | undefined,
  ) {
    super(peer);
    this.outCtl = out ? new Int32Array(out.buffer, 0, 2) : null;
    this.inCtl = inbound ? new Int32Array(inbound.buffer, 0, 2) : null;
    this.port = new PortLink(peer, port);
    this.port.attach({
      onFrame: (f) => this.deliver(f),
      onClose: (why) => this.closed(why),
    });
    if (this.inCtl) {
      this.readPos = Atomics.load(this.inCtl, TAIL);
      void this.pump(this.inCtl, inbound!);
    }
  }

  /** Takes ownership of `frame.payload` (a plain buffer: it is pooled once copied into a slot). */
  send(frame: Frame): void {
    this.sendCopy(frame, frame.payload);
    if (frame.payload) giveSegment(frame.payload);
  }

  /** Sends `frame` with `data` as its payload, copied now: the caller keeps `data`. */
  sendCopy(frame: Frame, data: Float32Array | undefined): void {
    const meta = frame.meta === undefined ? undefined : encoder.encode(frame.meta);
    const ring = frame.kind === FrameKind.data || frame.kind === FrameKind.header ? this.out : undefined;
    const fits = ring && (data?.length ?? 0) <= ring.slotElements && (meta?.length ?? 0) <= META_BYTES;
    if (!fits) {
      this.port.send({ ...frame, payload: data ? data.slice() : undefined });
      return;
    }
    if (this.queue.length === 0 && this.hasRoom()) {
      this.write(frame, meta, data);
      return;
    }
    this.queue.push({ frame, payload: data ? copySegment(data, 0, data.length) : undefined });
    void this.drain();
  }

  close(): void {
    this.closing = true;
    this.stopped = true;
    if (this.inCtl) Atomics.notify(this.inCtl, HEAD); // wakes this side's pump so it ends
    // Frames still queued (a goodbye) go out as the peer frees slots; the port closes once they have.
    if (this.queue.length === 0) this.port.close();
  }

  /** Frees incoming slot `index` once every slot before it is free too (slots are reused in order). */
  private free(index: number): void {
    const ctl = this.inCtl!;
    let tail = Atomics.load(ctl, TAIL);
    if (index !== tail) {
      this.freedEarly.add(index);
      return;
    }
    tail = (tail + 1) | 0;
    while (this.freedEarly.delete(tail)) tail = (tail + 1) | 0;
    Atomics.store(ctl, TAIL, tail);
    Atomics.notify(ctl, TAIL);
  }

  private hasRoom(): boolean {
    const ctl = this.outCtl!;
    return ((Atomics.load(ctl, HEAD) - Atomics.load(ctl, TAIL)) | 0) < this.out!.slots;
  }

  private write(frame: Frame, meta: Uint8Array | undefined, data: Float32Array | undefined): void {
    const ctl = this.outCtl!;
    const out = this.out!;
    const head = Atomics.load(ctl, HEAD);
    const base = CONTROL_BYTES + (head & (out.slots - 1)) * slotBytes(out.slotElements);
    const words = new Int32Array(out.buffer, base, 6);
    words[0] = frame.kind;
    words[1] = frame.seq;
    words[2] = frame.step;
    words[3] = frame.seg;
    words[4] = meta ? meta.length : -1;
    words[5] = data ? data.length : -1;
    if (meta) new Uint8Array(out.buffer, base + SLOT_HEADER_BYTES, meta.length).set(meta);
    if (data) new Float32Array(out.buffer, base + SLOT_HEADER_BYTES + META_BYTES, data.length).set(data);
    Atomics.store(ctl, HEAD, (head + 1) | 0); // publishes the slot's contents
    Atomics.notify(ctl, HEAD);
  }

  /** Writes queued frames as the receiver frees slots. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        if (!this.hasRoom()) {
          if (this.port.isClosed) return; // the receiver is gone: nobody will free a slot
          const ctl = this.outCtl!;
          const wait = waitAsync(ctl, TAIL, Atomics.load(ctl, TAIL), 1000);
          if (wait.async) await wait.value;
          continue;
        }
        const { frame, payload } = this.queue.shift()!;
        this.write(frame, frame.meta === undefined ? undefined : encoder.encode(frame.meta), payload);
        if (payload) giveSegment(payload);
      }
      if (this.stopped) this.port.close();
    } finally {
      this.draining = false;
    }
  }

  /** Reads incoming slots in order and delivers them until this side closes. */
  private async pump(ctl: Int32Array, ring: SharedRing): Promise<void> {
    const size = slotBytes(ring.slotElements);
    while (!this.stopped) {
      const head = Atomics.load(ctl, HEAD);
      if (head === this.readPos) {
        const wait = waitAsync(ctl, HEAD, head);
        if (wait.async) await wait.value;
        continue;
      }
      const index = this.readPos;
      this.readPos = (index + 1) | 0;
      const base = CONTROL_BYTES + (index & (ring.slots - 1)) * size;
      const words = new Int32Array(ring.buffer, base, 6);
      const metaLen = words[4]!;
      const n = words[5]!;
      const frame: Frame = {
        kind: words[0] as Frame['kind'],
        seq: words[1]!,
        step: words[2]!,
        seg: words[3]!,
      };
      if (metaLen >= 0) {
        // TextDecoder refuses views of shared memory: copy the few bytes out first.
        const bytes = new Uint8Array(ring.buffer, base + SLOT_HEADER_BYTES, metaLen).slice();
        frame.meta = decoder.decode(bytes);
      }
      if (n >= 0) {
        // The receiver reads (or reduces into) the slot in place and releases it when done.
        frame.payload = new Float32Array(ring.buffer, base + SLOT_HEADER_BYTES + META_BYTES, n);
        let freed = false;
        frame.release = () => {
          if (freed) return;
          freed = true;
          this.free(index);
        };
        this.deliver(frame);
      } else {
        this.deliver(frame);
        this.free(index);
      }
    }
  }
}
