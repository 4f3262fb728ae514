import { splitHeads } from '@mptjs/alibi-attention';
import * as tf from '@tensorflow/tfjs-core';
import { writeCacheRowsInPlace } from './kv-cache-program.js';
import { writeCacheRowsWasm } from './kv-cache-write-wasm.js';

interface LayerEntry {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

export interface KVCacheOptions {
  /**
   * On the webgpu and wasm backends, keep each layer's keys and values in a preallocated `[B, H, capacity, Dh]`
   * buffer and write every step into it in place (webgpu: one dispatch per tensor; wasm: a heap-to-heap copy)
   * instead of concatenating a grown copy. The capacity doubles from 64 positions as needed, up to `maxLength`.
   * Unfilled positions lie past every query's causal horizon, so causal attention over the whole buffer (with
   * `queryOffset` = the cached length) gives the same result. Ignored on the cpu backend, whose results stay
   * those of the concatenating cache.
   */
  preallocate?: { maxLength: number };
}

/** Smallest capacity the preallocated cache starts with (positions). */
const MIN_CAPACITY = 64;

/**
 * Keys and values of every layer for one batch of sequences that advance together (`[B, H, T, Dh]` per layer),
 * plus an optional key mask `[B, T]` (0 marks left padding). One cache per sequence (B = 1) is the unit a
 * continuous-batching server keeps; `KVCache.concatBatch` joins several into one batch, left-padding the shorter.
 *
 * The cache owns its tensors: `append` keeps the grown tensors alive across `tf.tidy` and frees the old ones.
 */
export class KVCache {
  private readonly layers: (LayerEntry | undefined)[];
  private maskTensor: tf.Tensor2D | null = null;
  /** Preallocated mode: positions filled per layer, the capacity every layer's buffer has, the length cap. */
  private readonly filled: number[];
  private capacityPositions = 0;
  private readonly maxLength: number;
  /** Preallocated mode: the key mask padded to the capacity, and the mask it was built from. */
  private paddedMask: { from: tf.Tensor2D; tensor: tf.Tensor2D } | null = null;
  /** Preallocated mode, nothing padded: the all-ones `[B, capacity]` key mask. */
  private onesMask: tf.Tensor2D | null = null;
  /** Whether keys and values live in preallocated buffers written in place (webgpu or wasm with `preallocate`). */
  readonly inPlace: boolean;
  /** The backend at creation is webgpu (whose attention programs take a fixed-width key mask). */
  private readonly onWebGpu: boolean;

  constructor(
    readonly numLayers: number,
    options: KVCacheOptions = {},
  ) {
    if (!Number.isInteger(numLayers) || numLayers < 1)
      throw new RangeError(`numLayers must be >= 1, got ${numLayers}`);
    this.layers = new Array(numLayers).fill(undefined);
    this.filled = new Array(numLayers).fill(0);
    const max = options.preallocate?.maxLength;
    if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
      throw new RangeError(`preallocate.maxLength must be a positive integer, got ${max}`);
    }
    const backend = tf.getBackend();
    this.inPlace = max !== undefined && (backend === 'webgpu' || backend === 'wasm');
    this.onWebGpu = backend === 'webgpu';
    this.maxLength = max ?? 0;
  }

  /** Positions cached (keys per sequence, padding included). */
  get length(): number {
    if (this.inPlace) {
      const last = this.filled[this.numLayers - 1]!;
      return this.layers[this.numLayers - 1] ? last : this.filled[0]!;
    }
    return this.layers[this.numLayers - 1]?.k.shape[2] ?? this.layers[0]?.k.shape[2] ?? 0;
  }

  /** Positions each layer's buffers hold: the capacity when preallocated, else the length. */
  get capacity(): number {
    return this.inPlace ? this.capacityPositions : this.length;
  }

  /**
   * Makes room for `newPositions` more positions (preallocated mode; a no-op otherwise), so that the buffers and
   * `keyMask` keep their width through the next step. `append` calls it too.
   */
  reserve(newPositions: number): void {
    if (this.inPlace) this.ensureCapacity(Math.max(...this.filled) + newPositions);
  }

  private ensureCapacity(need: number): void {
    if (need <= this.capacityPositions) return;
    if (need > this.maxLength) {
      throw new RangeError(`the cache holds at most ${this.maxLength} positions, ${need} were asked for`);
    }
    this.capacityPositions = Math.min(
      this.maxLength,
      Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(need))),
    );
  }

  get batchSize(): number | undefined {
    return this.layers[0]?.k.shape[0];
  }

  /**
   * The key mask `[B, length]`, or null when no position is padding. Preallocated, it is `[B, capacity]` (0
   * past the length), the width of the keys attention sees.
   */
  get keyMask(): tf.Tensor2D | null {
    const mask = this.maskTensor;
    if (!this.inPlace || !mask) return mask;
    const width = this.capacityPositions;
    if (this.paddedMask?.from === mask && this.paddedMask.tensor.shape[1] === width)
      return this.paddedMask.tensor;
    const tensor = tf.keep(
      tf.tidy(
        () =>
          tf.pad(mask, [
            [0, 0],
            [0, width - mask.shape[1]],
          ]) as tf.Tensor2D,
      ),
    );
    this.paddedMask?.tensor.dispose();
    this.paddedMask = { from: mask, tensor };
    return tensor;
  }

  /**
   * The key mask attention over this cache's keys takes: `keyMask` as it is, except preallocated, where it is
   * always a `[batch, capacity]` tensor on webgpu (ones when nothing is padded), kept by the cache until the
   * capacity changes, so a decode step neither fills nor uploads one. On wasm no mask is the faster case (the
   * one-kernel decode attention takes none), and the causal horizon alone hides the unfilled positions.
   */
  attentionKeyMask(batch: number): tf.Tensor2D | null {
    if (!this.inPlace || !this.onWebGpu || this.maskTensor) return this.keyMask;
    const width = this.capacityPositions;
    const ones = this.onesMask;
    if (ones && ones.shape[0] === batch && ones.shape[1] === width) return ones;
    ones?.dispose();
    this.onesMask = tf.keep(tf.ones([batch, width]) as tf.Tensor2D);
    return this.onesMask;
  }

  /** The layer's cached keys and values (preallocated: the whole `[B, H, capacity, Dh]` buffers). */
  layer(index: number): LayerEntry | undefined {
    this.checkLayer(index);
    return this.layers[index];
  }

  /**
   * Appends this step's keys and values as the QKV projection gives them, `[B, Tnew, H*Dh]`, to `layer`, and
   * returns the cached K and V (`[B, H, T, Dh]`; preallocated, the whole buffers, `T` = capacity). Preallocated,
   * one in-place write per tensor; otherwise the heads are split and `append` concatenates.
   */
  appendRows(index: number, k: tf.Tensor, v: tf.Tensor, nHeads: number): LayerEntry {
    if (!this.inPlace) return this.append(index, splitHeads(k, nHeads), splitHeads(v, nHeads));
    this.checkLayer(index);
    const [b, t, width] = k.shape as [number, number, number];
    if (k.rank !== 3 || v.shape.join() !== k.shape.join() || width % nHeads !== 0) {
      throw new RangeError(
        `appendRows expects keys and values [batch, time, heads*headDim], got [${k.shape}], [${v.shape}]`,
      );
    }
    const { pos, ...entry } = this.claimRows(index, [b, nHeads, t, width / nHeads]);
    const write = this.onWebGpu ? writeCacheRowsInPlace : writeCacheRowsWasm;
    write(entry.k, k, pos);
    write(entry.v, v, pos);
    return entry;
  }

  /**
   * Preallocated mode: makes room in layer `index` for `shape`'s `t` new positions of `[B, H, t, Dh]`, counts
   * them as filled and returns the buffers with the position they start at. The caller writes them before
   * anything reads the layer (a decode step that writes the heap directly).
   */
  claimRows(index: number, shape: [number, number, number, number]): LayerEntry & { pos: number } {
    if (!this.inPlace) throw new Error('claimRows needs a preallocated cache (webgpu or wasm)');
    this.checkLayer(index);
    const entry = this.ensureBuffers(index, shape);
    const pos = this.filled[index]!;
    this.filled[index] = pos + shape[2];
    return { k: entry.k, v: entry.v, pos };
  }

  /** Appends this step's `[B, H, Tnew, Dh]` keys and values to `layer`; returns the whole cached K and V. */
  append(index: number, k: tf.Tensor4D, v: tf.Tensor4D): LayerEntry {
    this.checkLayer(index);
    if (this.inPlace) {
      const rows = tf.tidy(() => [mergeRows(k), mergeRows(v)]);
      try {
        return this.appendRows(index, rows[0]!, rows[1]!, k.shape[1]);
      } finally {
        tf.dispose(rows);
      }
    }
    const old = this.layers[index];
    if (
      old &&
      (old.k.shape[0] !== k.shape[0] || old.k.shape[1] !== k.shape[1] || old.k.shape[3] !== k.shape[3])
    ) {
      throw new RangeError(`cannot append keys [${k.shape}] to a cache holding [${old.k.shape}]`);
    }
    const next = tf.tidy(() =>
      old
        ? { k: tf.concat([old.k, k], 2) as tf.Tensor4D, v: tf.concat([old.v, v], 2) as tf.Tensor4D }
        : { k: k.clone(), v: v.clone() },
    );
    tf.keep(next.k);
    tf.keep(next.v);
    if (old) tf.dispose([old.k, old.v]);
    this.layers[index] = next;
    return next;
  }

  /**
   * Extends the key mask by `[B, Tnew]` (1 real, 0 padding). Call once per step before or after the layers; the
   * first call starts the mask (positions before it count as real). The mask is not inspected: reading it back
   * would need a synchronous read, which webgpu in Node does not have, so a caller passes one only when a
   * position may be padding.
   */
  appendMask(mask: tf.Tensor2D, pastLength: number): void {
    const next = tf.tidy(() => {
      const past = this.maskTensor ?? tf.ones([mask.shape[0], pastLength]);
      return tf.concat([past, tf.cast(mask, 'float32')], 1) as tf.Tensor2D;
    });
    tf.keep(next);
    this.maskTensor?.dispose();
    this.maskTensor = next;
  }

  /** Frees every tensor; the cache is empty afterwards. */
  dispose(): void {
    for (let i = 0; i < this.numLayers; i++) {
      const e = this.layers[i];
      if (e) tf.dispose([e.k, e.v]);
      this.layers[i] = undefined;
      this.filled[i] = 0;
    }
    this.capacityPositions = 0;
    this.maskTensor?.dispose();
    this.maskTensor = null;
    this.paddedMask?.tensor.dispose();
    this.paddedMask = null;
    this.onesMask?.dispose();
    this.onesMask = null;
  }

  /**
   * Joins caches (each filled for every layer) into one batch cache. Shorter ones are left-padded with zeros
   * that the key mask hides; ALiBi sees relative distances, so positions stay right. With `preallocate` (on
   * webgpu and wasm) the joined cache is written in place from then on, like `newCache()`'s.
   */
  static concatBatch(caches: readonly KVCache[], options: KVCacheOptions = {}): KVCache {
    if (caches.length === 0) throw new RangeError('concatBatch needs at least one cache');
    const numLayers = caches[0]!.numLayers;
    const maxLength = Math.max(...caches.map((c) => c.length));
    const out = new KVCache(numLayers, options);
    // Preallocated (`options.preallocate`), the joined buffers get the capacity's room after the last position.
    if (out.inPlace) out.ensureCapacity(maxLength);
    const room = out.inPlace ? out.capacityPositions - maxLength : 0;
    for (const c of caches) {
      if (c.numLayers !== numLayers)
        throw new RangeError(`cannot batch caches of ${numLayers} and ${c.numLayers} layers`);
      if (c.length === 0) throw new RangeError('cannot batch an empty cache');
    }
    for (let layer = 0; layer < numLayers; layer++) {
      const entry = tf.tidy(() => {
        const pad = (t: tf.Tensor4D) =>
          tf.pad(t, [
            [0, 0],
            [0, 0],
            [maxLength - t.shape[2], 0],
            [0, 0],
          ]);
        const ks = caches.map((c) => pad(c.filledLayer(layer).k));
        const vs = caches.map((c) => pad(c.filledLayer(layer).v));
        const join = (parts: tf.Tensor4D[]) =>
          tf.pad(tf.concat(parts, 0), [
            [0, 0],
            [0, 0],
            [0, room],
            [0, 0],
          ]) as tf.Tensor4D;
        return { k: join(ks), v: join(vs) };
      });
      out.layers[layer] = { k: tf.keep(entry.k), v: tf.keep(entry.v) };
      out.filled[layer] = maxLength;
    }
    const needsMask = caches.some((c) => c.length !== maxLength || c.maskTensor);
    if (needsMask) {
      out.maskTensor = tf.keep(
        tf.tidy(() => {
          const masks = caches.map((c) => {
            const b = c.batchSize!;
            const own = c.maskTensor ?? tf.ones([b, c.length]);
            return tf.pad(own, [
              [0, 0],
              [maxLength - c.length, 0],
            ]);
          });
          return tf.concat(masks, 0) as tf.Tensor2D;
        }),
      );
    }
    return out;
  }

  /** The layer's filled positions (a slice of the buffers when preallocated; call inside `tf.tidy`). */
  private filledLayer(index: number): LayerEntry {
    const e = this.layers[index];
    if (!e) throw new RangeError(`layer ${index} of the cache is empty`);
    if (!this.inPlace) return e;
    const [b, h, , dh] = e.k.shape;
    const size: [number, number, number, number] = [b, h, this.filled[index]!, dh];
    return { k: tf.slice(e.k, [0, 0, 0, 0], size), v: tf.slice(e.v, [0, 0, 0, 0], size) };
  }

  /** Preallocated mode: the layer's buffers, allocated or grown (zeros past the old end) to hold `shape`'s step. */
  private ensureBuffers(index: number, shape: [number, number, number, number]): LayerEntry {
    const [b, h, t, dh] = shape;
    const old = this.layers[index];
    if (old && (old.k.shape[0] !== b || old.k.shape[1] !== h || old.k.shape[3] !== dh)) {
      throw new RangeError(`cannot append keys [${b},${h},${t},${dh}] to a cache holding [${old.k.shape}]`);
    }
    this.ensureCapacity(this.filled[index]! + t);
    const capacity = this.capacityPositions;
    if (old && old.k.shape[2] === capacity) return old;
    const grow = (x: tf.Tensor4D | undefined): tf.Tensor4D =>
      tf.keep(
        tf.tidy(() =>
          x
            ? (tf.pad(x, [
                [0, 0],
                [0, 0],
                [0, capacity - x.shape[2]],
                [0, 0],
              ]) as tf.Tensor4D)
            : tf.zeros([b, h, capacity, dh]),
        ),
      );
    const next = { k: grow(old?.k), v: grow(old?.v) };
    if (old) tf.dispose([old.k, old.v]);
    this.layers[index] = next;
    return next;
  }

  private checkLayer(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.numLayers) {
      throw new RangeError(`layer index ${index} out of range [0, ${this.numLayers})`);
    }
  }
}

/** `[B, H, T, Dh] -> [B, T, H*Dh]`, the layout `appendRows` takes. */
function mergeRows(x: tf.Tensor4D): tf.Tensor3D {
  const [b, h, t, dh] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, h * dh]) as tf.Tensor3D;
}
