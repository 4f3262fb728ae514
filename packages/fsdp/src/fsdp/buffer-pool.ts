// Float32Arrays handed out by length and taken back for reuse. FSDP's ring path needs a full-size buffer per
// group only while that group is being gathered or reduced; keeping one per group for the whole run would hold
// the whole model on every rank, and allocating afresh each time makes garbage the size of the model every
// step. The pool keeps what was returned, so it holds as many buffers of a length as were ever in use at once.
export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();

  /** A buffer of `length` floats; its contents are whatever it held last (zeros when new). */
  take(length: number): Float32Array {
    return this.free.get(length)?.pop() ?? new Float32Array(length);
  }

  give(buf: Float32Array): void {
    let list = this.free.get(buf.length);
    if (!list) {
      list = [];
      this.free.set(buf.length, list);
    }
    list.push(buf);
  }

  /** Floats held for reuse. */
  get retained(): number {
    let n = 0;
    for (const [length, list] of this.free) n += length * list.length;
    return n;
  }
}
