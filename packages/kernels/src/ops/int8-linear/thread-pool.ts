/**
 * The int8 matrix-vector product split over threads. One core streams int8 weights at only half of what it
 * streams float32 (the kernel is bound by widening and dot-product instructions, not memory), and tfjs-wasm's
 * Node build runs on one thread, so this pool owns worker threads and one shared `WebAssembly.Memory`: each
 * quantized weight is copied into it once, on its first product here; per call the calling thread writes x
 * there, every thread (the caller included) runs `int8_matvec_rows` over its own contiguous block of output
 * columns, and the caller copies y into the tfjs output. Every column is computed by the same instructions on
 * the same rounded x as on one thread, so the result is bit for bit the single-thread one. Threads meet on an
 * Int32Array over the shared memory (`Atomics.wait` / `Atomics.notify`, after a short bounded spin).
 */
import type { Worker } from 'node:worker_threads';
import { addressOf, backendMemory, compiledKernelModule, type WasmBackendLike } from '../../wasm/load.js';
import { SharedHeap } from '../../wasm/shared-heap.js';
import { WASM_THREADS_MAX, workerThreads } from '../../wasm/threads.js';

/** Products with fewer weights than this stay on the calling thread: waking a worker would cost more. */
export const INT8_THREAD_MIN_WEIGHTS = 1 << 18;

// Control block at address 0: one slot of 16 int32 per worker, then one 128-byte error text per worker.
const CONTROL_BYTES = 4096;
const SLOT_INTS = 16;
const ERROR_AT = 2048;
const ERROR_BYTES = 128;
// Slot fields (int32 indices within a slot).
const SEQ = 0; // bumped by the caller to hand out a job; -1 stops the worker
const DONE = 1; // set by the worker to the job's SEQ when it has finished
const STATUS = 2; // 0 while starting, then READY or FAILED
const ARGS = 3; // x, w, s, y, m, n, k, kp, scratch, j0, j1
const ERROR_LENGTH = 14;
const READY = 1;
const FAILED = 2;

interface RowsKernel {
  int8_matvec_rows(
    x: number,
    w: number,
    s: number,
    y: number,
    m: number,
    n: number,
    k: number,
    kp: number,
    scratch: number,
    j0: number,
    j1: number,
  ): void;
}

// Runs as a CommonJS script in each worker (`eval: true`): instantiate the kernel on the shared memory, then
// wait for jobs in the slot, run each, report it done. A kernel trap is written to the slot, not thrown.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
(function main() {
  const { memory, module, slot, spinMicros } = workerData;
  const ctl = new Int32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});
  const b = slot * ${SLOT_INTS};
  const fail = (err) => {
    const text = new TextEncoder().encode(String((err && err.message) || err)).subarray(0, ${ERROR_BYTES});
    new Uint8Array(memory.buffer, ${ERROR_AT} + slot * ${ERROR_BYTES}, ${ERROR_BYTES}).set(text);
    Atomics.store(ctl, b + ${ERROR_LENGTH}, text.length);
    Atomics.store(ctl, b + ${STATUS}, ${FAILED});
  };
  let kernel;
  try {
    kernel = new WebAssembly.Instance(module, { env: { memory } }).exports;
  } catch (err) {
    fail(err);
    Atomics.notify(ctl, b + ${STATUS});
    return;
  }
  Atomics.store(ctl, b + ${STATUS}, ${READY});
  parentPort.postMessage('ready');
  let seen = 0; // not read from the slot: a job may be handed out as soon as READY is visible
  for (;;) {
    // Spin up to spinMicros after the last job before blocking: a decode step's products come tens of
    // microseconds apart, and waking a blocked thread costs about as much.
    let seq = Atomics.load(ctl, b + ${SEQ});
    const until = performance.now() + spinMicros / 1000;
    for (let i = 1; seq === seen; i++) {
      if ((i & 63) === 0 && performance.now() > until) break;
      seq = Atomics.load(ctl, b + ${SEQ});
    }
    while (seq === seen) {
      Atomics.wait(ctl, b + ${SEQ}, seen);
      seq = Atomics.load(ctl, b + ${SEQ});
    }
    if (seq < 0) return;
    seen = seq;
    const a = b + ${ARGS};
    try {
      kernel.int8_matvec_rows(ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 3], ctl[a + 4], ctl[a + 5], ctl[a + 6],
        ctl[a + 7], ctl[a + 8], ctl[a + 9], ctl[a + 10]);
    } catch (err) {
      fail(err);
    }
    Atomics.store(ctl, b + ${DONE}, seq);
    Atomics.notify(ctl, b + ${DONE});
  }
})();
`;

export interface Int8ThreadPoolOptions {
  /** Threads in all, the calling one included (2 to 16). */
  threads: number;
  /**
   * Microseconds a worker keeps polling for the next job before it blocks (default 100; also
   * `MPTJS_WASM_SPIN_US`). The caller polls for as long as its workers take, then blocks.
   */
  spinMicros?: number;
  /**
   * How long the caller waits for a worker before it gives up with an error (a worker that exited mid-call
   * cannot say so while the caller is blocked): at least this, or 100 times the caller's own share.
   */
  timeoutMs?: number;
}

/** A tensor on the tfjs-wasm backend, named by its data id. */
type DataRef = { dataId: object };

interface WeightCopy {
  packed: number;
  scales: number;
  packedBytes: number;
  scalesBytes: number;
}

export class Int8ThreadPool {
  readonly threads: number;
  private readonly heap: SharedHeap;
  private readonly ctl: Int32Array;
  private readonly kernel: RowsKernel;
  private readonly workers: Worker[] = [];
  private readonly ready: Promise<void>;
  private readonly timeoutMs: number;
  /** Weight copies in the shared memory, by the tfjs data id of the packed tensor. */
  private readonly copies = new Map<object, WeightCopy>();
  private io = { at: 0, bytes: 0 };
  private seq = 0;
  private broken: string | null = null;
  private disposed = false;

  constructor(options: Int8ThreadPoolOptions) {
    const { threads, spinMicros = defaultSpinMicros(), timeoutMs = 5000 } = options;
    if (!(spinMicros >= 0 && spinMicros <= 1e6)) {
      throw new RangeError(`Int8ThreadPool: spinMicros must be from 0 to 1e6, got ${spinMicros}`);
    }
    if (!Number.isInteger(threads) || threads < 2 || threads > WASM_THREADS_MAX) {
      throw new RangeError(
        `Int8ThreadPool: threads must be an integer from 2 to ${WASM_THREADS_MAX}, got ${threads}`,
      );
    }
    const wt = workerThreads();
    if (!wt) throw new Error('Int8ThreadPool needs worker_threads and SharedArrayBuffer');
    const module = compiledKernelModule('int8-matmul', 'shared');
    if (!module)
      throw new Error('Int8ThreadPool: this engine rejects the shared-memory int8 kernel (no SIMD?)');
    this.threads = threads;
    this.timeoutMs = timeoutMs;
    this.heap = new SharedHeap(CONTROL_BYTES);
    this.ctl = new Int32Array(this.heap.memory.buffer, 0, CONTROL_BYTES / 4);
    this.kernel = new WebAssembly.Instance(module, { env: { memory: this.heap.memory } })
      .exports as unknown as RowsKernel;
    const started: Promise<void>[] = [];
    for (let slot = 0; slot < threads - 1; slot++) {
      const worker = new wt.Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { memory: this.heap.memory, module, slot, spinMicros },
      });
      worker.unref();
      worker.on('error', (err) => this.fail(`int8 worker thread ${slot + 1} failed: ${err.message}`));
      worker.on('exit', (code) => this.fail(`int8 worker thread ${slot + 1} exited (code ${code})`));
      started.push(
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('exit', () => reject(new Error(this.broken ?? 'int8 worker thread exited')));
        }),
      );
      this.workers.push(worker);
    }
    this.ready = Promise.all(started).then(() => undefined);
    this.ready.catch(() => {}); // reported by the next call instead
  }

  /** Resolves once every worker can take jobs (calls before that leave the workers that are not ready out). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** The worker threads (the caller is thread 0 and is not among them). */
  get workerThreads(): readonly Worker[] {
    return this.workers;
  }

  /** Why the pool can no longer run (a worker exited or failed), or null. */
  get failure(): string | null {
    return this.broken;
  }

  private fail(reason: string): void {
    if (!this.disposed && this.broken === null) this.broken = reason;
  }

  /**
   * `out = x . (packed * scales)^T` for `x` `[m, k]` on the tfjs-wasm heap of `backend`, with the weight's
   * columns split over the threads. Returns how many threads took part (workers still starting sit a call
   * out). Throws (and the pool must be disposed) when a worker has exited or failed.
   */
  matvec(
    backend: WasmBackendLike,
    x: DataRef,
    packed: DataRef,
    scales: DataRef,
    out: DataRef,
    dims: { m: number; n: number; k: number; kp: number },
  ): number {
    if (this.disposed) throw new Error('Int8ThreadPool: used after dispose()');
    if (this.broken) throw new Error(`int8Linear: ${this.broken}`);
    const { m, n, k, kp } = dims;
    const weight = this.weightCopy(backend, packed, scales, n, kp);
    const scratchBytes = align(2 * 4 * kp + 32);
    const xBytes = align(4 * m * k);
    const yBytes = align(4 * m * n);
    const ioAt = this.ioRegion(xBytes + yBytes + this.threads * scratchBytes);
    const xAt = ioAt;
    const yAt = ioAt + xBytes;
    const scratchAt = yAt + yBytes;
    const tfHeap = backendMemory(backend)!.buffer;
    const heap = this.heap.memory.buffer;
    new Float32Array(heap, xAt, m * k).set(new Float32Array(tfHeap, addressOf(backend, x.dataId), m * k));

    // Ready workers and the caller share the columns in contiguous blocks; the caller takes the first.
    const ready: number[] = [];
    for (let slot = 0; slot < this.workers.length; slot++) {
      const status = Atomics.load(this.ctl, slot * SLOT_INTS + STATUS);
      if (status === FAILED) this.throwFailure(slot);
      if (status === READY) ready.push(slot);
    }
    const parts = ready.length + 1;
    const bound = (p: number) => Math.round((n * p) / parts);
    this.seq = (this.seq % 0x3fffffff) + 1;
    for (let p = 1; p < parts; p++) {
      const b = ready[p - 1]! * SLOT_INTS;
      const args = [xAt, weight.packed, weight.scales, yAt, m, n, k, kp, scratchAt + p * scratchBytes];
      this.ctl.set(args, b + ARGS);
      this.ctl[b + ARGS + 9] = bound(p);
      this.ctl[b + ARGS + 10] = bound(p + 1);
      Atomics.store(this.ctl, b + SEQ, this.seq);
      Atomics.notify(this.ctl, b + SEQ);
    }
    const t0 = performance.now();
    this.kernel.int8_matvec_rows(xAt, weight.packed, weight.scales, yAt, m, n, k, kp, scratchAt, 0, bound(1));
    const deadline = performance.now() + Math.max(this.timeoutMs, 100 * (performance.now() - t0));
    for (let p = 1; p < parts; p++) this.awaitWorker(ready[p - 1]!, deadline, n, k);

    const outAt = addressOf(backend, out.dataId);
    new Float32Array(backendMemory(backend)!.buffer, outAt, m * n).set(new Float32Array(heap, yAt, m * n));
    return parts;
  }

  private awaitWorker(slot: number, deadline: number, n: number, k: number): void {
    const b = slot * SLOT_INTS;
    // The caller has done its share, so the worker is close behind: poll for up to a millisecond, then block.
    let done = Atomics.load(this.ctl, b + DONE);
    const until = performance.now() + 1;
    for (let i = 1; done !== this.seq; i++) {
      if ((i & 63) === 0 && performance.now() > until) break;
      done = Atomics.load(this.ctl, b + DONE);
    }
    while (done !== this.seq) {
      const left = deadline - performance.now();
      if (left <= 0) {
        this.fail(
          `int8 worker thread ${slot + 1} did not finish its share of a [${n}, ${k}] product within ` +
            `${Math.round(this.timeoutMs)} ms (it may have exited)`,
        );
        throw new Error(`int8Linear: ${this.broken}`);
      }
      Atomics.wait(this.ctl, b + DONE, done, Math.min(left, 50));
      done = Atomics.load(this.ctl, b + DONE);
    }
    if (Atomics.load(this.ctl, b + STATUS) === FAILED) this.throwFailure(slot);
  }

  /** Throws the error text a worker left in its slot. */
  private throwFailure(slot: number): never {
    const length = Atomics.load(this.ctl, slot * SLOT_INTS + ERROR_LENGTH);
    const text = new Uint8Array(this.heap.memory.buffer, ERROR_AT + slot * ERROR_BYTES, length).slice();
    this.fail(`int8 worker thread ${slot + 1} failed: ${new TextDecoder().decode(text)}`);
    throw new Error(`int8Linear: ${this.broken}`);
  }

  /** The shared copy of a weight, made on first use; copies of disposed tensors are freed first. */
  private weightCopy(
    backend: WasmBackendLike,
    packed: DataRef,
    scales: DataRef,
    n: number,
    kp: number,
  ): WeightCopy {
    const found = this.copies.get(packed.dataId);
    if (found) return found;
    for (const [dataId, copy] of this.copies) {
      if (backend.dataIdMap.has(dataId)) continue;
      this.heap.release(copy.packed, copy.packedBytes);
      this.heap.release(copy.scales, copy.scalesBytes);
      this.copies.delete(dataId);
    }
    const copy: WeightCopy = {
      packed: this.heap.alloc(n * kp),
      scales: this.heap.alloc(4 * n),
      packedBytes: n * kp,
      scalesBytes: 4 * n,
    };
    const tfHeap = backendMemory(backend)!.buffer;
    const heap = this.heap.memory.buffer;
    new Uint8Array(heap, copy.packed, n * kp).set(
      new Uint8Array(tfHeap, addressOf(backend, packed.dataId), n * kp),
    );
    new Uint8Array(heap, copy.scales, 4 * n).set(
      new Uint8Array(tfHeap, addressOf(backend, scales.dataId), 4 * n),
    );
    this.copies.set(packed.dataId, copy);
    return copy;
  }

  /** A region of at least `bytes` for x, y and the threads' scratch, reused from call to call. */
  private ioRegion(bytes: number): number {
    if (bytes > this.io.bytes) {
      if (this.io.bytes > 0) this.heap.release(this.io.at, this.io.bytes);
      this.io = { at: this.heap.alloc(bytes), bytes };
    }
    return this.io.at;
  }

  /** Bytes of the shared memory in use (weight copies, the call region, the control block). */
  get sharedBytes(): number {
    return this.heap.used;
  }

  /** Stops and terminates the workers; the shared memory goes with the last reference to the pool. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (let slot = 0; slot < this.workers.length; slot++) {
      Atomics.store(this.ctl, slot * SLOT_INTS + SEQ, -1);
      Atomics.notify(this.ctl, slot * SLOT_INTS + SEQ);
    }
    for (const worker of this.workers) void worker.terminate();
    this.copies.clear();
  }
}

/** Environment variable for the workers' poll time (`spinMicros`). */
export const WASM_SPIN_ENV = 'MPTJS_WASM_SPIN_US';

function defaultSpinMicros(): number {
  const env = typeof process === 'undefined' ? undefined : process.env[WASM_SPIN_ENV];
  if (env === undefined || env === '') return 100;
  const us = Number(env);
  if (!Number.isFinite(us) || us < 0 || us > 1e6) {
    throw new RangeError(`${WASM_SPIN_ENV} must be a number of microseconds from 0 to 1e6, got "${env}"`);
  }
  return us;
}

function align(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}
