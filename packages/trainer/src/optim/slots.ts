import type { HostTensor } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';

/** Per-parameter optimizer buffers (moments), created as zeros on first use, kept as tf.Variables. */
export class SlotStore {
  private readonly slots = new Map<string, Map<string, tf.Variable>>();

  constructor(private readonly slotNames: readonly string[]) {}

  get(param: string, like: tf.Tensor): Map<string, tf.Variable> {
    let s = this.slots.get(param);
    if (!s) {
      s = new Map(this.slotNames.map((n) => [n, tf.tidy(() => tf.variable(tf.zerosLike(like), false))]));
      this.slots.set(param, s);
    } else {
      const first = s.values().next().value as tf.Variable;
      if (first.size !== like.size) {
        throw new Error(
          `optimizer state for "${param}" has ${first.size} values, the parameter has ${like.size}`,
        );
      }
    }
    return s;
  }

  async toHost(): Promise<Record<string, Record<string, HostTensor>>> {
    const out: Record<string, Record<string, HostTensor>> = {};
    for (const [param, s] of this.slots) {
      out[param] = {};
      for (const [name, v] of s)
        out[param][name] = { shape: [...v.shape], data: (await v.data()) as Float32Array };
    }
    return out;
  }

  load(host: Record<string, Record<string, HostTensor>>): void {
    this.dispose();
    for (const [param, s] of Object.entries(host)) {
      const m = new Map<string, tf.Variable>();
      for (const name of this.slotNames) {
        const a = s[name];
        if (!a) throw new Error(`optimizer state for "${param}" lacks slot "${name}"`);
        // tidy: the variable keeps the data; the tensor it was made from must not outlive it.
        m.set(
          name,
          tf.tidy(() => tf.variable(tf.tensor(a.data, a.shape, 'float32'), false)),
        );
      }
      this.slots.set(param, m);
    }
  }

  dispose(): void {
    for (const s of this.slots.values()) for (const v of s.values()) v.dispose();
    this.slots.clear();
  }
}
