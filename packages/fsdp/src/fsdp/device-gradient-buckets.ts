// Gradients kept on the device, one bucket per parameter group, until the group's last reader has run backward;
// then the whole group leaves the device as one flat, padded array in one asynchronous read. On a GPU a read
// completes only once the GPU has run everything queued before it, and the hooks must not wait for it: the unit
// chain's driver then queues the backward of the unit before while this group's copy, and after it the ring's
// reduce-scatter, are under way. One read per group rather than one per parameter also spares a round trip per
// parameter, and a tied parameter's contributions (MPT's wte, from the head and the embedding) are summed on the
// device and cross the bus once.
import * as tf from '@tensorflow/tfjs-core';
import type { FlatLayout } from './flat-layout.js';

export class DeviceGradientBuckets {
  private readonly held = new Map<string, Map<string, tf.Tensor>>();

  /** Keeps `gradient` (owned from here on) as `name`'s in `group`; a second contribution is added to the first. */
  add(group: string, name: string, gradient: tf.Tensor): void {
    let bucket = this.held.get(group);
    if (!bucket) {
      bucket = new Map();
      this.held.set(group, bucket);
    }
    const before = bucket.get(name);
    if (!before) {
      bucket.set(name, gradient);
      return;
    }
    // Same order as the host path's `first; += next`, so the sum is the same float.
    bucket.set(name, tf.add(before, gradient));
    before.dispose();
    gradient.dispose();
  }

  /**
   * Starts reading the group's gradient as one flat array of `paddedNumel` floats (zeros where a parameter got no
   * gradient, and in the padding) and releases the bucket. The copy is queued now, behind the kernels computing
   * it; the promise settles once the GPU has run them.
   */
  read(layout: FlatLayout): Promise<Float32Array> {
    const bucket = this.held.get(layout.name) ?? new Map<string, tf.Tensor>();
    this.held.delete(layout.name);
    let flat: tf.Tensor;
    try {
      flat = tf.tidy(() => {
        const parts = layout.entries.map((e) => {
          const g = bucket.get(e.name);
          return g ? tf.reshape(g, [-1]) : tf.zeros([e.numel]);
        });
        if (layout.paddedNumel > layout.numel) parts.push(tf.zeros([layout.paddedNumel - layout.numel]));
        return parts.length === 1 ? parts[0]!.clone() : tf.concat(parts);
      });
    } finally {
      for (const t of bucket.values()) t.dispose();
    }
    const values = flat.data() as Promise<Float32Array>;
    return values.finally(() => flat.dispose());
  }

  /** Frees whatever a pass left behind (an error in the middle of a backward pass). */
  dispose(): void {
    for (const bucket of this.held.values()) for (const t of bucket.values()) t.dispose();
    this.held.clear();
  }
}
