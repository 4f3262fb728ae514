/**
 * The int8 matrix-vector product split over threads. One core streams int8 weights at only half of what it
 * streams float32 (the kernel is bound by widening and dot-product instructions, not memory), and tfjs-wasm's
 * Node build runs on one thread, so this pool owns worker threads and one shared `WebAssembly.Memory`: each
 * quantized weight is copied into it once, on its first product here. Per call the calling thread writes x
 * there and rounds it (`int8_round_rows`), then it and the workers claim chunks of output columns from an
 * atomic counter and run `int8_matvec_rounded` on each, and the caller copies y into the tfjs output. Claiming
 * instead of a fixed split matters on a loaded machine: a worker that is not scheduled leaves its chunks to the
 * caller instead of stalling it. Every column is computed by the same instructions on the same rounded x as on
 * one thread, so the result is bit for bit the single-thread one. Threads meet on an Int32Array over the shared
 * memory (`Atomics.wait` / `Atomics.notify`, after a short bounded spin).
 */
import type { Worker } from 'node:worker_threads';
import { addressOf, backendMemory, compiledKernelModule, type WasmBackendLike } from '../../wasm/load.js';
import { SharedHeap } from '../../wasm/shared-heap.js';
import { WASM_THREADS_MAX, workerThreads } from '../../wasm/threads.js';

/** Products with fewer weights than this stay on the calling thread: waking a worker would cost more. */
export const INT8_THREAD_MIN_WEIGHTS = 1 << 18;
/** Weight bytes read per claimed chunk (a few microseconds of work): fine enough to balance, coarse enough
 * that claiming costs little. */
const CHUNK_BYTES = 1 << 16;
const MAX_CHUNKS = 4096;

// Control block at address 0 (int32 indices); the counters sit on cache lines of their own.
const CLAIM = 0; // (job tag << 16) | next chunk; the tag is the job's low 15 bits
const SEQ = 32; // the job number, bumped by the caller to hand out a job; -1 stops the workers
const ARGS = 48; // t, w, s, y, m, n, kp, chunk rows, chunks
const SLOTS = 64; // per worker: status, error length, the job it is working in (0: none)
const SLOT_INTS = 4;
const ERROR_AT = 2048; // per worker: error text
const ERROR_BYTES = 64;
const SUMS_AT = 3072; // per thread (caller 0): 16 bytes of the kernel's sums, a cache line apart
const DONE_AT = 4096; // per chunk: the job number that finished it
const CONTROL_BYTES = DONE_AT + 4 * MAX_CHUNKS;
const READY = 1;
const FAILED = 2;

interface RoundedKernel {
  int8_scratch_bytes(m: number, kp: number): number;
  int8_round_rows(x: number, m: number, k: number, kp: number, t: number): void;
  int8_matvec_rounded(
    t: number,
    w: number,
    s: number,
    y: number,
    m: number,
    n: number,
    kp: number,
    sums: number,
    j0: number,
    j1: number,
  ): void;
}

// Runs in each worker (`eval: true`, as a script or a module, whichever the process's flags make it): instantiate the kernel on the shared memory, then
// for each job claim chunks until none are left. The job tag in the claim counter keeps a worker that wakes
// late from claiming a chunk of a later job. A kernel trap is written to the worker's slot, not thrown.
const WORKER_SOURCE = `
const { workerData, parentPort } = process.getBuiltinModule('node:worker_threads');
(function main() {
  const { memory, module, slot, spinMicros } = workerData;
  const ctl = new Int32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});
  const b = ${SLOTS} + slot * ${SLOT_INTS};
  const sums = ${SUMS_AT} + (slot + 1) * 64;
  const fail = (err) => {
    const text = new TextEncoder().encode(String((err && err.message) || err)).subarray(0, ${ERROR_BYTES});
    new Uint8Array(memory.buffer, ${ERROR_AT} + slot * ${ERROR_BYTES}, ${ERROR_BYTES}).set(text);
    Atomics.store(ctl, b + 1, text.length);
    Atomics.store(ctl, b, ${FAILED});
  };
  let kernel;
  try {
    kernel = new WebAssembly.Instance(module, { env: { memory } }).exports;
  } catch (err) {
    fail(err);
    return;
  }
  Atomics.store(ctl, b, ${READY});
  parentPort.postMessage('ready');
  let seen = 0; // not read from the block: a job may be handed out as soon as READY is visible
  for (;;) {
    // Poll up to spinMicros before blocking: a decode step's products come tens of microseconds apart, and
    // waking a blocked thread costs about as much.
    let seq = Atomics.load(ctl, ${SEQ});
    const until = performance.now() + spinMicros / 1000;
    for (let i = 1; seq === seen; i++) {
      if ((i & 63) === 0 && performance.now() > until) break;
      seq = Atomics.load(ctl, ${SEQ});
    }
    while (seq === seen) {
      Atomics.wait(ctl, ${SEQ}, seen);
      seq = Atomics.load(ctl, ${SEQ});
    }
    if (seq < 0) return;
    seen = seq;
    // Marked before claiming: the caller does not reuse this job's buffers while the mark stands.
    Atomics.store(ctl, b + 2, seq);
    const tag = (seq & 0x7fff) << 16;
    for (;;) {
      const v = Atomics.load(ctl, ${CLAIM});
      if ((v & 0x7fff0000) !== tag) break;
      if (Atomics.compareExchange(ctl, ${CLAIM}, v, v + 1) !== v) continue;
      // Claimed under this job's tag, so the job is still running and its arguments are whole.
      const c = v & 0xffff;
      const a = ${ARGS};
      if (c >= ctl[a + 8]) break;
      const n = ctl[a + 5];
      const j0 = c * ctl[a + 7];
      try {
        kernel.int8_matvec_rounded(ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 3], ctl[a + 4], n, ctl[a + 6], sums,
          j0, Math.min(n, j0 + ctl[a + 7]));
      } catch (err) {
        fail(err);
      }
      Atomics.store(ctl, ${DONE_AT / 4} + c, seq);
    }
    Atomics.store(ctl, b + 2, 0);
    Atomics.notify(ctl, b + 2);
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
   * How long the caller waits for a worker still in an earlier product before it gives up with an error (a
   * worker that exited mid-call cannot say so while the caller is blocked). Default 5000.
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
  private readonly kernel: RoundedKernel;
  private readonly workers: Worker[] = [];
  private readonly ready: Promise<void>;
  private readonly timeoutMs: number;
  /** Weight copies in the shared memory, by the tfjs data id of the packed tensor. */
  private readonly copies = new Map<object, WeightCopy>();
  private readonly io = [
    { at: 0, bytes: 0 },
    { at: 0, bytes: 0 },
  ];
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
      .exports as unknown as RoundedKernel;
    const started: Promise<void>[] = [];
    for (let slot = 0; slot < threads - 1; slot++) {
      const worker = new wt.Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { memory: this.heap.memory, module, slot, spinMicros },
      });
      worker.on('error', (err) => this.fail(`int8 worker thread ${slot + 1} failed: ${err.message}`));
      worker.on('exit', (code) => this.fail(`int8 worker thread ${slot + 1} exited (code ${code})`));
      started.push(
        new Promise<void>((resolve, reject) => {
          // Held open only until it has started (so that awaiting whenReady() alone keeps a process up).
          worker.once('message', () => {
            worker.unref();
            resolve();
          });
          worker.once('exit', () => reject(new Error(this.broken ?? 'int8 worker thread exited')));
        }),
      );
      this.workers.push(worker);
    }
    this.ready = Promise.all(started).then(() => undefined);
    this.ready.catch(() => {}); // reported by the next call instead
  }

  /** Resolves once every worker has started (until then the caller runs the chunks they do not claim). */
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
   * columns claimed in chunks by the threads. Returns the chunk count and how many the caller ran (the workers
   * ran the rest), of which `recomputed` were claimed by a worker that did not finish them in time. Throws (and
   * the pool must be disposed) when a worker has exited or failed.
   */
  matvec(
    backend: WasmBackendLike,
    x: DataRef,
    packed: DataRef,
    scales: DataRef,
    out: DataRef,
    dims: { m: number; n: number; k: number; kp: number },
  ): { chunks: number; byCaller: number; recomputed: number } {
    if (this.disposed) throw new Error('Int8ThreadPool: used after dispose()');
    if (this.broken) throw new Error(`int8Linear: ${this.broken}`);
    for (let slot = 0; slot < this.workers.length; slot++) {
      if (Atomics.load(this.ctl, SLOTS + slot * SLOT_INTS) === FAILED) this.throwFailure(slot);
    }
    const { m, n, k, kp } = dims;
    this.seq = (this.seq % 0x3fffffff) + 1;
    const seq = this.seq;
    const weight = this.weightCopy(backend, packed, scales, n, kp);
    // Two call regions in turn: a worker still finishing a chunk of the last job (its result already
    // recomputed by the caller) writes into the other one.
    const xBytes = align(4 * m * k);
    const yBytes = align(4 * m * n);
    const ioAt = this.ioRegion(seq & 1, xBytes + yBytes + this.kernel.int8_scratch_bytes(m, kp));
    this.awaitWorkers((active) => active === 0 || active === seq - 1);
    const xAt = ioAt;
    const yAt = ioAt + xBytes;
    const t = yAt + yBytes;
    const heap = this.heap.memory.buffer;
    new Float32Array(heap, xAt, m * k).set(
      new Float32Array(backendMemory(backend)!.buffer, addressOf(backend, x.dataId), m * k),
    );
    this.kernel.int8_round_rows(xAt, m, k, kp, t);

    // Chunks of about CHUNK_BYTES of weight reads, at least four per thread.
    const blocks = m === 1 ? 1 : Math.ceil(m / 4);
    let chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / (kp * blocks)));
    chunkRows = Math.min(chunkRows, Math.ceil(n / (4 * this.threads)));
    chunkRows = Math.max(chunkRows, Math.ceil(n / MAX_CHUNKS));
    const chunks = Math.ceil(n / chunkRows);
    this.ctl.set([t, weight.packed, weight.scales, yAt, m, n, kp, chunkRows, chunks], ARGS);
    Atomics.store(this.ctl, CLAIM, (seq & 0x7fff) << 16);
    Atomics.store(this.ctl, SEQ, seq);
    Atomics.notify(this.ctl, SEQ);

    const run = (c: number) => {
      const j0 = c * chunkRows;
      const j1 = Math.min(n, j0 + chunkRows);
      this.kernel.int8_matvec_rounded(t, weight.packed, weight.scales, yAt, m, n, kp, SUMS_AT, j0, j1);
      this.ctl[DONE_AT / 4 + c] = seq;
    };
    const t0 = performance.now();
    let byCaller = 0;
    for (;;) {
      const c = Atomics.add(this.ctl, CLAIM, 1) & 0xffff;
      if (c >= chunks) break;
      run(c);
      byCaller++;
    }
    // Chunks still held by workers: a scheduled worker finishes one in about the time the caller took per
    // chunk, so wait a few times that; a worker that is not running (a loaded machine) would hold the caller
    // for a whole time slice, so the caller computes those chunks itself (the same bits) instead.
    const perChunk = byCaller > 0 ? (performance.now() - t0) / byCaller : 0.02;
    const until = performance.now() + Math.max(0.05, 4 * perChunk);
    let recomputed = 0;
    for (let c = 0; c < chunks; c++) {
      if (Atomics.load(this.ctl, DONE_AT / 4 + c) === seq) continue;
      let done = false;
      while (!done && performance.now() < until) done = Atomics.load(this.ctl, DONE_AT / 4 + c) === seq;
      if (done || Atomics.load(this.ctl, DONE_AT / 4 + c) === seq) continue;
      run(c);
      recomputed++;
    }
    for (let slot = 0; slot < this.workers.length; slot++) {
      if (Atomics.load(this.ctl, SLOTS + slot * SLOT_INTS) === FAILED) this.throwFailure(slot);
    }

    const outAt = addressOf(backend, out.dataId);
    new Float32Array(backendMemory(backend)!.buffer, outAt, m * n).set(new Float32Array(heap, yAt, m * n));
    return { chunks, byCaller: byCaller + recomputed, recomputed };
  }

  /**
   * Waits until every worker's current job passes `free` (0: none): before the caller reuses buffers a
   * straggler from an earlier job may still write. Gives up with an error after the timeout.
   */
  private awaitWorkers(free: (active: number) => boolean): void {
    const deadline = performance.now() + this.timeoutMs;
    for (let slot = 0; slot < this.workers.length; slot++) {
      const at = SLOTS + slot * SLOT_INTS + 2;
      for (let active = Atomics.load(this.ctl, at); !free(active); active = Atomics.load(this.ctl, at)) {
        const left = deadline - performance.now();
        if (left <= 0) {
          this.fail(
            `int8 worker thread ${slot + 1} did not finish its part of an earlier product within ` +
              `${Math.round(this.timeoutMs)} ms (it may have exited)`,
          );
          throw new Error(`int8Linear: ${this.broken}`);
        }
        Atomics.wait(this.ctl, at, active, Math.min(left, 50));
      }
    }
  }

  /** Throws the error text a worker left in its slot. */
  private throwFailure(slot: number): never {
    const length = Atomics.load(this.ctl, SLOTS + slot * SLOT_INTS + 1);
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
    this.awaitWorkers((active) => active === 0); // no straggler reads memory about to be reused
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

  /** Call region `which` (0 or 1) of at least `bytes` for x, y and the rounded x, reused from call to call. */
  private ioRegion(which: number, bytes: number): number {
    const io = this.io[which]!;
    if (bytes > io.bytes) {
      this.awaitWorkers((active) => active === 0); // no straggler writes into the region released
      if (io.bytes > 0) this.heap.release(io.at, io.bytes);
      this.io[which] = { at: this.heap.alloc(bytes), bytes };
    }
    return this.io[which]!.at;
  }

  /** Bytes of the shared memory in use (weight copies, the call region, the control block). */
  get sharedBytes(): number {
    return this.heap.used;
  }

  /** Stops and terminates the workers; the shared memory goes with the last reference to the pool. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.ctl, SEQ, -1);
    Atomics.notify(this.ctl, SEQ);
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
