/** A host-side tensor as checkpoints hold it, already widened to float32. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Parameters (or optimizer slots) by name, in host memory: what checkpoints and shards are saved from. */
export type StateDict = Map<string, HostTensor>;
