// Merge table: (left id, right id) -> (rank, merged id), an open-addressing hash over typed arrays so a lookup in
// the merge loop allocates nothing and hashes two small ints.

export class PairMap {
  private readonly mask: number;
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly ranks: Int32Array;
  private readonly merged: Int32Array;
  size = 0;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.left = new Int32Array(cap).fill(-1);
    this.right = new Int32Array(cap);
    this.ranks = new Int32Array(cap);
    this.merged = new Int32Array(cap);
  }

  private slotOf(a: number, b: number): number {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x3c6ef372, 0x85ebca6b)) & this.mask;
    while (this.left[h] !== -1 && (this.left[h] !== a || this.right[h] !== b)) h = (h + 1) & this.mask;
    return h;
  }

  /** Later entries for the same pair replace earlier ones, as when HF collects merges into a map. */
  set(a: number, b: number, rank: number, mergedId: number): void {
    const h = this.slotOf(a, b);
    if (this.left[h] === -1) this.size++;
    this.left[h] = a;
    this.right[h] = b;
    this.ranks[h] = rank;
    this.merged[h] = mergedId;
  }

  /** Slot of the pair, or -1 when (a, b) is not a merge. */
  find(a: number, b: number): number {
    const h = this.slotOf(a, b);
    return this.left[h] === -1 ? -1 : h;
  }

  rankAt(slot: number): number {
    return this.ranks[slot];
  }

  mergedAt(slot: number): number {
    return this.merged[slot];
  }
}
