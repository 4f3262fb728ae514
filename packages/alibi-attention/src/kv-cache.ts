import * as tf from '@tensorflow/tfjs-core';

interface LayerEntry {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

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

  constructor(readonly numLayers: number) {
    if (!Number.isInteger(numLayers) || numLayers < 1)
      throw new RangeError(`numLayers must be >= 1, got ${numLayers}`);
    this.layers = new Array(numLayers).fill(undefined);
  }

  /** Positions cached (keys per sequence, padding included). */
  get length(): number {
    return this.layers[this.numLayers - 1]?.k.shape[2] ?? this.layers[0]?.k.shape[2] ?? 0;
  }

  get batchSize(): number | undefined {
    return this.layers[0]?.k.shape[0];
  }

  /** The key mask `[B, length]`, or null when no position is padding. */
  get keyMask(): tf.Tensor2D | null {
    return this.maskTensor;
  }

  layer(index: number): LayerEntry | undefined {
    this.checkLayer(index);
    return this.layers[index];
  }

  /** Appends this step's `[B, H, Tnew, Dh]` keys and values to `layer`; returns the whole cached K and V. */
  append(index: number, k: tf.Tensor4D, v: tf.Tensor4D): LayerEntry {
    this.checkLayer(index);
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
   * Extends the key mask by `[B, Tnew]` (1 real, 0 padding). Call once per step before or after the layers;
   * while no padding was ever appended the mask stays null.
   */
  appendMask(mask: tf.Tensor2D, pastLength: number): void {
    const hasPadding = tf.tidy(() => tf.any(tf.equal(mask, 0)).dataSync()[0] === 1);
    if (!this.maskTensor && !hasPadding) return;
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
    }
    this.maskTensor?.dispose();
    this.maskTensor = null;
  }

  /**
   * Joins caches (each filled for every layer) into one batch cache. Shorter ones are left-padded with zeros
   * that the key mask hides; ALiBi sees relative distances, so positions stay right.
   */
  static concatBatch(caches: readonly KVCache[]): KVCache {
    if (caches.length === 0) throw new RangeError('concatBatch needs at least one cache');
    const numLayers = caches[0]!.numLayers;
    const maxLength = Math.max(...caches.map((c) => c.length));
    const out = new KVCache(numLayers);
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
        const ks = caches.map((c) => pad(c.requireLayer(layer).k));
        const vs = caches.map((c) => pad(c.requireLayer(layer).v));
        return { k: tf.concat(ks, 0) as tf.Tensor4D, v: tf.concat(vs, 0) as tf.Tensor4D };
      });
      out.layers[layer] = { k: tf.keep(entry.k), v: tf.keep(entry.v) };
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

  private requireLayer(index: number): LayerEntry {
    const e = this.layers[index];
    if (!e) throw new RangeError(`layer ${index} of the cache is empty`);
    return e;
  }

  private checkLayer(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.numLayers) {
      throw new RangeError(`layer index ${index} out of range [0, ${this.numLayers})`);
    }
  }
}
