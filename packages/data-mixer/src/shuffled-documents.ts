// One stream's documents in the order an epoch visits them, with a cursor that can be saved and restored.
//
// Shuffling scheme (bounded memory): each epoch visits the stream's units (files or MDS shards) in a seeded
// permutation; each unit is read in order in windows of `blockSize` consecutive records, and the records of a
// window are visited in a seeded permutation. Only one window per stream is in memory. With `shuffle: false`
// units and records keep their stored order.
import { hashSeed, permutation } from './random.js';
import type { Document, LazyDocument, StreamSource } from './source.js';

/** Position of a document: epoch, position in the epoch's unit order, position in the unit's visit order. */
export interface DocumentPosition {
  epoch: number;
  unit: number;
  doc: number;
}

interface Window {
  epoch: number;
  unit: number;
  index: number;
  records: LazyDocument[];
  order: Uint32Array;
}

export class ShuffledDocuments {
  private position: DocumentPosition = { epoch: 0, unit: 0, doc: 0 };
  private unitOrderEpoch = -1;
  private unitOrder: Uint32Array = new Uint32Array(0);
  private window: Window | undefined;
  private reader: { unit: number; epoch: number; next: number; it: AsyncGenerator<LazyDocument> } | undefined;

  constructor(
    private readonly source: StreamSource,
    private readonly name: string,
    private readonly seed: number,
    private readonly shuffle: boolean,
    private readonly blockSize: number,
  ) {}

  get at(): DocumentPosition {
    return { ...this.position };
  }

  seek(position: DocumentPosition): void {
    this.position = { ...position };
  }

  /**
   * The document at the cursor, loading windows and moving past exhausted units and epochs as needed. Records the
   * source skips (bad MDS samples under `on_bad_record: skip`) are stepped over like records that are not there.
   */
  async current(): Promise<Document> {
    // Units entered since a document was last found: more than a whole epoch of them means there are none.
    let unitsWithoutDocument = 0;
    while (true) {
      const { epoch, unit, doc } = this.position;
      const windowIndex = Math.floor(doc / this.blockSize);
      const w = this.window;
      if (!w || w.epoch !== epoch || w.unit !== unit || w.index !== windowIndex) {
        this.window = await this.loadWindow(epoch, unit, windowIndex);
      }
      const window = this.window!;
      const inWindow = doc - windowIndex * this.blockSize;
      if (inWindow < window.records.length) {
        const record = window.records[window.order[inWindow] as number] as LazyDocument;
        const document = typeof record === 'function' ? record() : record;
        if (document !== null) return document;
        this.position.doc++;
        continue;
      }
      // Unit exhausted: the next unit, or the next epoch.
      if (++unitsWithoutDocument > this.source.units.length) {
        throw new Error(
          `stream ${this.name}: no documents in ${this.source.dir}${this.source.skipped > 0 ? ` (${this.source.skipped} bad records skipped)` : ''}`,
        );
      }
      this.position =
        unit + 1 < this.source.units.length
          ? { epoch, unit: unit + 1, doc: 0 }
          : { epoch: epoch + 1, unit: 0, doc: 0 };
    }
  }

  /** Moves the cursor to the next document. */
  advance(): void {
    this.position.doc++;
  }

  /** The unit (file or shard index in sorted order) that epoch position `unit` visits. */
  unitAt(epoch: number, unit: number): number {
    if (!this.shuffle) return unit;
    if (this.unitOrderEpoch !== epoch) {
      this.unitOrder = permutation(this.source.units.length, hashSeed(this.seed, this.name, 'units', epoch));
      this.unitOrderEpoch = epoch;
    }
    return this.unitOrder[unit]!;
  }

  private async loadWindow(epoch: number, unit: number, index: number): Promise<Window> {
    const actual = this.unitAt(epoch, unit);
    const from = index * this.blockSize;
    const r = this.reader;
    if (!r || r.unit !== unit || r.epoch !== epoch || r.next !== from) {
      await r?.it.return(undefined);
      this.reader = { unit, epoch, next: from, it: this.source.records(actual, from) };
    }
    const reader = this.reader!;
    const records: LazyDocument[] = [];
    while (records.length < this.blockSize) {
      const next = await reader.it.next();
      if (next.done) break;
      records.push(next.value);
    }
    reader.next += records.length;
    const order = this.shuffle
      ? permutation(records.length, hashSeed(this.seed, this.name, 'docs', epoch, actual, index))
      : Uint32Array.from({ length: records.length }, (_, i) => i);
    return { epoch, unit, index, records, order };
  }
}
