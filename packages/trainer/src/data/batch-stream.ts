import type { DataMixer, MixerBatch } from '@mptjs/data-mixer';

/** A batch iterator that remembers the state after the last batch it handed out. */
export class BatchStream {
  private readonly it: AsyncGenerator<MixerBatch>;

  constructor(
    private readonly mixer: DataMixer,
    batchSize: number,
    rank = 0,
    worldSize = 1,
  ) {
    this.it = mixer.batches({ batchSize, rank, worldSize });
  }

  async next(): Promise<MixerBatch> {
    const r = await this.it.next();
    if (r.done) throw new Error('the data stream ended');
    return r.value;
  }

  state(): unknown {
    return this.mixer.state();
  }

  get streamNames(): string[] {
    return this.mixer.streamNames;
  }

  async close(): Promise<void> {
    await this.it.return(undefined);
  }
}
