/** What travels between ring neighbours. Payloads are owned by the receiver once sent (transfer, not copy). */
export interface Frame {
  kind: FrameKind;
  /** Collective sequence number (1, 2, ...), the same on all ranks for the same call. */
  seq: number;
  /** Ring step within the collective. */
  step: number;
  /** Segment of the chunk sent at this step (large chunks are pipelined in segments). */
  seg: number;
  /** Small JSON text: op header, abort reason, hello. */
  meta?: string;
  payload?: Float32Array;
  /**
   * Set on received frames whose payload is a view of the link's own memory (shared-memory slots): the receiver
   * calls it once done with the payload so the slot can be reused. Never sent.
   */
  release?: () => void;
}

export const FrameKind = {
  /** Announces a collective: op name, sizes, root; lets the receiver check they match its own call. */
  header: 1,
  data: 2,
  /** The sender's group failed; carries the reason so the receiver fails the same way and passes it on. */
  abort: 3,
  /** The sender is shutting its group down on purpose. */
  bye: 4,
  /** First frame on a new TCP connection: who is calling. */
  hello: 5,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** A duplex connection to one peer rank. */
export interface Link {
  readonly peer: number;
  /** Sends a frame; takes ownership of `frame.payload`, which the caller must not touch afterwards. */
  send(frame: Frame): void;
  /** Optional: sends `frame` with a copy of `data` made now (one copy, no staging buffer); the caller keeps `data`. */
  sendCopy?(frame: Frame, data: Float32Array): void;
  /** Starts delivering frames (those received earlier are buffered until then). */
  attach(handlers: LinkHandlers): void;
  /** Closes after flushing what was sent. */
  close(): void;
}

export interface LinkHandlers {
  onFrame(frame: Frame): void;
  /** The connection closed without this side closing it; `reason` says how. */
  onClose(reason: string): void;
}

/** Buffers frames and a close until a group attaches, so nothing is lost between connecting and attaching. */
export abstract class BufferedLink implements Link {
  private handlers: LinkHandlers | null = null;
  private pending: Frame[] = [];
  private pendingClose: string | null = null;
  protected closing = false;

  constructor(readonly peer: number) {}

  abstract send(frame: Frame): void;
  abstract close(): void;

  /** The connection is closed (by either side). */
  get isClosed(): boolean {
    return this.closing;
  }

  attach(handlers: LinkHandlers): void {
    this.handlers = handlers;
    for (const f of this.pending) handlers.onFrame(f);
    this.pending = [];
    if (this.pendingClose !== null) handlers.onClose(this.pendingClose);
  }

  protected deliver(frame: Frame): void {
    if (this.handlers) this.handlers.onFrame(frame);
    else this.pending.push(frame);
  }

  protected closed(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    if (this.handlers) this.handlers.onClose(reason);
    else this.pendingClose = reason;
  }
}

/** A payload that owns its whole ArrayBuffer, so it can be transferred without detaching someone else's data. */
export function ownedPayload(a: Float32Array): Float32Array {
  return a.byteOffset === 0 &&
    a.byteLength === a.buffer.byteLength &&
    !(a.buffer instanceof SharedArrayBuffer)
    ? a
    : a.slice();
}
