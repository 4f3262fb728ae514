// encodeBatch: texts are cut into chunks of similar size and handed to a pool of workers, each holding its own
// copy of the tokenizer. Node uses worker_threads; browsers use module Web Workers; without either (or with
// threads: 0) the batch is encoded in-thread.
import type { BatchOptions, Tokenizer } from './tokenizer.js';

/** Minimal common shape of a Node worker and a browser Worker. */
interface PoolWorker {
  post(message: unknown, transfer?: Transferable[]): void;
  /** Receives the worker's messages and errors for the batch in progress. */
  listener: ((data: unknown, error?: unknown) => void) | null;
  ref(active: boolean): void;
  terminate(): void;
}

interface ChunkResult {
  chunk: number;
  flat: Int32Array;
  lengths: Int32Array;
}

const MIN_CHARS_PER_WORKER = 16 * 1024;
const pools = new WeakMap<Tokenizer, Promise<PoolWorker[] | null>>();
/** Batches on one pool run one after another. */
const queues = new WeakMap<Tokenizer, Promise<unknown>>();

export async function encodeBatchInWorkers(
  tok: Tokenizer,
  texts: readonly string[],
  options: BatchOptions,
): Promise<number[][]> {
  const addSpecialTokens = options.addSpecialTokens ?? true;
  texts.forEach((t, i) => {
    if (typeof t !== 'string')
      throw new TypeError(`encodeBatch: texts[${i}] is ${typeof t}, expected a string`);
  });
  let totalChars = 0;
  for (const t of texts) totalChars += t.length;
  // The calling thread encodes too, so `threads` threads means threads - 1 workers.
  const threads = options.threads ?? (await defaultThreads());
  const wanted = Math.min(threads - 1, Math.floor(totalChars / MIN_CHARS_PER_WORKER) - 1);
  const inThread = () => texts.map((t) => tok.encode(t, { addSpecialTokens }));
  if (wanted < 1) return inThread();
  const workers = await workerPool(tok, threads - 1);
  if (!workers) return inThread();
  const previous = queues.get(tok) ?? Promise.resolve();
  const run = previous
    .catch(() => {})
    .then(() => runChunks(tok, workers.slice(0, wanted), texts, totalChars, addSpecialTokens));
  queues.set(tok, run);
  return run;
}

/** Terminates the worker pool of a tokenizer (it is also unref'd, so an idle pool never keeps Node alive). */
export async function closeWorkers(tok: Tokenizer): Promise<void> {
  const pool = await pools.get(tok);
  pools.delete(tok);
  for (const w of pool ?? []) w.terminate();
}

/** Workers currently started for a tokenizer (0 until a large batch runs, or when workers are unavailable). */
export async function workerCount(tok: Tokenizer): Promise<number> {
  return (await pools.get(tok))?.length ?? 0;
}

async function defaultThreads(): Promise<number> {
  if (typeof navigator !== 'undefined' && navigator.hardwareConcurrency)
    return Math.min(8, navigator.hardwareConcurrency);
  try {
    const os = await import('node:os');
    return Math.min(8, os.availableParallelism());
  } catch {
    return 1;
  }
}

function workerPool(tok: Tokenizer, size: number): Promise<PoolWorker[] | null> {
  let pool = pools.get(tok);
  if (!pool) {
    pool = startWorkers(tok, size);
    pools.set(tok, pool);
  }
  return pool;
}

async function startWorkers(tok: Tokenizer, size: number): Promise<PoolWorker[] | null> {
  const url = new URL('./encode-worker.js', import.meta.url);
  const json = tok.toJSONString();
  const workers: PoolWorker[] = [];
  for (let i = 0; i < size; i++) {
    const w = await spawn(url);
    if (!w) return null;
    w.post({ type: 'init', json });
    workers.push(w);
  }
  return workers;
}

async function spawn(url: URL): Promise<PoolWorker | null> {
  if (typeof process !== 'undefined' && process.versions?.node) {
    const { existsSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    if (url.protocol !== 'file:' || !existsSync(fileURLToPath(url))) return null; // running from source: no worker build
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(url);
    w.unref();
    const pw: PoolWorker = {
      post: (m, transfer) => w.postMessage(m, transfer as never),
      listener: null,
      ref: (active) => (active ? w.ref() : w.unref()),
      terminate: () => void w.terminate(),
    };
    w.on('message', (data) => pw.listener?.(data));
    w.on('error', (err) => pw.listener?.(null, err));
    return pw;
  }
  if (typeof Worker === 'undefined') return null;
  const w = new Worker(url, { type: 'module' });
  const pw: PoolWorker = {
    post: (m, transfer) => w.postMessage(m, transfer ?? []),
    listener: null,
    ref: () => {},
    terminate: () => w.terminate(),
  };
  w.addEventListener('message', (e) => pw.listener?.((e as MessageEvent).data));
  w.addEventListener('error', (e) => pw.listener?.(null, e));
  return pw;
}

let batchSeq = 0;

/** Runs `fn` after pending I/O callbacks (worker messages), without setTimeout's minimum delay in Node. */
function yieldThen(fn: () => void): void {
  if (typeof setImmediate === 'function') setImmediate(fn);
  else setTimeout(fn, 0);
}

function runChunks(
  tok: Tokenizer,
  workers: PoolWorker[],
  texts: readonly string[],
  totalChars: number,
  addSpecialTokens: boolean,
): Promise<number[][]> {
  // About eight chunks per thread so a slow chunk does not leave the others idle.
  const target = Math.max(1, Math.ceil(totalChars / ((workers.length + 1) * 8)));
  const bounds: number[] = [0];
  let acc = 0;
  for (let i = 0; i < texts.length; i++) {
    acc += texts[i].length;
    if (acc >= target && i + 1 < texts.length) {
      bounds.push(i + 1);
      acc = 0;
    }
  }
  bounds.push(texts.length);
  const chunks = bounds.length - 1;
  const batch = ++batchSeq;
  const results: number[][] = new Array(texts.length);
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    let failed = false;
    const send = (w: PoolWorker) => {
      if (next >= chunks) return;
      const c = next++;
      w.post({
        type: 'encode',
        batch,
        chunk: c,
        texts: texts.slice(bounds[c], bounds[c + 1]),
        addSpecialTokens,
      });
    };
    for (const w of workers) {
      w.ref(true);
      w.listener = (data: unknown, error?: unknown) => {
        if (failed) return;
        if (error !== undefined) {
          failed = true;
          for (const x of workers) x.ref(false);
          reject(error);
          return;
        }
        const msg = data as ChunkResult & { batch: number; error?: string };
        if (msg.batch !== batch) return;
        if (msg.error) {
          failed = true;
          for (const x of workers) x.ref(false);
          reject(new Error(`encodeBatch worker failed: ${msg.error}`));
          return;
        }
        let at = 0;
        const base = bounds[msg.chunk];
        for (let k = 0; k < msg.lengths.length; k++) {
          results[base + k] = Array.from(msg.flat.subarray(at, at + msg.lengths[k]));
          at += msg.lengths[k];
        }
        if (++done === chunks) {
          for (const x of workers) x.ref(false);
          resolve(results);
        } else send(w);
      };
    }
    // Two chunks in flight per worker: a worker never waits for this thread to hand it the next one.
    for (const w of workers) {
      send(w);
      send(w);
    }
    // Meanwhile this thread takes chunks too, yielding between them so finished workers get their next chunk.
    const local = () => {
      if (failed || next >= chunks) return;
      const c = next++;
      try {
        for (let i = bounds[c]; i < bounds[c + 1]; i++)
          results[i] = tok.encode(texts[i], { addSpecialTokens });
      } catch (err) {
        failed = true;
        for (const x of workers) x.ref(false);
        reject(err);
        return;
      }
      if (++done === chunks) {
        for (const x of workers) x.ref(false);
        resolve(results);
      } else yieldThen(local);
    };
    local();
  });
}
