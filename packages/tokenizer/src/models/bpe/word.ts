// Applies BPE merges to one word: repeatedly merge the adjacent pair of lowest rank, leftmost first. This is the
// order HF's priority queue produces. Short words use a linear scan over a ranks array (tiktoken-style, no
// allocation); long words use a heap over a linked list so a huge unbroken word stays O(n log n).
import type { PairMap } from './pair-map.js';

const LINEAR_MAX = 128;

/** Reusable scratch buffers for merging; one per thread. */
export class WordMerger {
  private ranks = new Int32Array(256);
  private slots = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private heap = new Float64Array(256);

  constructor(private readonly merges: PairMap) {}

  /**
   * Merges symbols `syms[0..n)` in place; `lens` (symbol lengths in model chars) is merged alongside when given.
   * Returns the new symbol count.
   */
  merge(syms: Int32Array, lens: Int32Array | null, n: number, forceHeap = false): number {
    if (n < 2) return n;
    return n <= LINEAR_MAX && !forceHeap ? this.mergeLinear(syms, lens, n) : this.mergeHeap(syms, lens, n);
  }

  private grow(n: number): void {
    if (this.ranks.length >= n) return;
    let cap = this.ranks.length;
    while (cap < n) cap *= 2;
    this.ranks = new Int32Array(cap);
    this.slots = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.heap = new Float64Array(cap * 2);
  }

  private pairAt(syms: Int32Array, i: number): void {
    const slot = this.merges.find(syms[i], syms[i + 1]);
    this.slots[i] = slot;
    this.ranks[i] = slot < 0 ? 0x7fffffff : this.merges.rankAt(slot);
  }

  private mergeLinear(syms: Int32Array, lens: Int32Array | null, n: number): number {
    this.grow(n);
    const ranks = this.ranks;
    const slots = this.slots;
    for (let i = 0; i < n - 1; i++) this.pairAt(syms, i);
    while (n > 1) {
      let best = 0x7fffffff;
      let at = -1;
      for (let i = 0; i < n - 1; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          at = i;
        }
      }
      if (at < 0) break;
      syms[at] = this.merges.mergedAt(slots[at]);
      if (lens) lens[at] += lens[at + 1];
      for (let i = at + 1; i < n - 1; i++) {
        syms[i] = syms[i + 1];
        ranks[i] = ranks[i + 1];
        slots[i] = slots[i + 1];
        if (lens) lens[i] = lens[i + 1];
      }
      n--;
      if (at > 0) this.pairAt(syms, at - 1);
      if (at < n - 1) this.pairAt(syms, at);
    }
    return n;
  }

  private mergeHeap(syms: Int32Array, lens: Int32Array | null, n: number): number {
    this.grow(n);
    const prev = this.prev;
    const next = this.next;
    const alive = this.slots; // reused: 1 while the symbol still starts a live span
    let heap = this.heap;
    let size = 0;
    const push = (key: number) => {
      if (size === heap.length) {
        const bigger = new Float64Array(heap.length * 2);
        bigger.set(heap);
        heap = bigger;
        this.heap = bigger;
      }
      let i = size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p] <= key) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0];
      const last = heap[--size];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && heap[c + 1] < heap[c]) c++;
        if (heap[c] >= last) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
      return top;
    };
    const offer = (i: number, j: number) => {
      const slot = this.merges.find(syms[i], syms[j]);
      if (slot >= 0) push(this.merges.rankAt(slot) * 4294967296 + i);
    };
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
      alive[i] = 1;
    }
    for (let i = 0; i < n - 1; i++) offer(i, i + 1);
    while (size > 0) {
      const key = pop();
      const pos = key % 4294967296;
      const rank = (key - pos) / 4294967296;
      if (!alive[pos] || next[pos] < 0) continue;
      const right = next[pos];
      const slot = this.merges.find(syms[pos], syms[right]);
      if (slot < 0 || this.merges.rankAt(slot) !== rank) continue; // stale entry
      syms[pos] = this.merges.mergedAt(slot);
      if (lens) lens[pos] += lens[right];
      alive[right] = 0;
      next[pos] = next[right];
      if (next[pos] >= 0) prev[next[pos]] = pos;
      if (prev[pos] >= 0) offer(prev[pos], pos);
      if (next[pos] >= 0) offer(pos, next[pos]);
    }
    let m = 0;
    for (let i = 0; i >= 0; i = next[i]) {
      syms[m] = syms[i];
      if (lens) lens[m] = lens[i];
      m++;
    }
    return m;
  }
}
