// Temperature and top-p sampling over a whole vocabulary without sorting it.
//
// mpt-model's reference `sampleToken` sorts every logit (tens of milliseconds for 50k of them, per sequence per
// step), then walks the sorted probabilities: top-p keeps the shortest prefix whose mass reaches p, and the draw
// takes the first token whose running sum passes `random * kept mass`. Both walks only need the token at which a
// running sum in that order crosses a threshold, which a quickselect-style partition finds in expected linear
// time. Tokens are first spread over buckets by logit (a bucket's tokens all precede the next bucket's), so one
// pass over the bucket masses finds the bucket holding the crossing, and only its few tokens are ordered: by a
// quickselect-style partition around pivots when there are many, by sorting when few.

/** Candidates at or below this count are sorted and walked directly. */
const SMALL = 32;
/** Logit buckets, equal widths between the smallest finite logit and the largest. */
const BUCKETS = 4096;

// Scratch buffers reused across calls (sampling is synchronous, so one set suffices).
let probs = new Float64Array(0);
let pool = new Int32Array(0);
let bucketOf = new Uint16Array(0);
const bucketMass = new Float64Array(BUCKETS);

function scratch(n: number): void {
  if (probs.length < n) {
    probs = new Float64Array(n);
    pool = new Int32Array(n);
    bucketOf = new Uint16Array(n);
  }
}

/** The reference order: larger logit first, lower id first on ties. */
function precedes(logits: Float32Array, a: number, b: number): boolean {
  const la = logits[a]!;
  const lb = logits[b]!;
  return la > lb || (la === lb && a < b);
}

/** Pivot positions come from a private generator, so the sampling generator's sequence is the reference's. */
let pivotState = 0x2545f491;
function pivotOffset(span: number): number {
  pivotState ^= pivotState << 13;
  pivotState ^= pivotState >>> 17;
  pivotState ^= pivotState << 5;
  return (pivotState >>> 0) % span;
}

interface Crossing {
  /** Position in `pool` of the crossing token; `pool[0..position]` then holds exactly the tokens up to it. */
  position: number;
  /** Mass of the tokens up to and including it. */
  mass: number;
}

/**
 * Finds, among `pool[0..count)` in the reference order, the first token at which `massBefore` plus the running sum
 * of `probs` reaches `target` (`>=` when `inclusive`, else `>`), reordering `pool` so that the tokens before it come
 * first. Undefined when the sum never gets there (rounding at the very end).
 */
function findCrossing(
  logits: Float32Array,
  count: number,
  massBefore: number,
  target: number,
  inclusive: boolean,
): Crossing | undefined {
  const reaches = (sum: number) => (inclusive ? sum >= target : sum > target);
  let lo = 0;
  let hi = count;
  // Mass of everything before pool[lo]: every token there precedes every token in [lo, hi).
  let before = massBefore;
  while (hi - lo > SMALL) {
    const p = lo + pivotOffset(hi - lo);
    const pivot = pool[p]!;
    pool[p] = pool[hi - 1]!;
    pool[hi - 1] = pivot;
    let store = lo;
    let above = 0;
    for (let i = lo; i < hi - 1; i++) {
      const id = pool[i]!;
      if (precedes(logits, id, pivot)) {
        above += probs[id]!;
        pool[i] = pool[store]!;
        pool[store++] = id;
      }
    }
    pool[hi - 1] = pool[store]!;
    pool[store] = pivot;
    if (reaches(before + above)) hi = store;
    else if (reaches(before + above + probs[pivot]!))
      return { position: store, mass: before + above + probs[pivot]! };
    else {
      before += above + probs[pivot]!;
      lo = store + 1;
    }
  }
  const rest = Array.from(pool.subarray(lo, hi)).sort((a, b) => logits[b]! - logits[a]! || a - b);
  let sum = before;
  for (let i = 0; i < rest.length; i++) {
    const id = rest[i]!;
    pool[lo + i] = id;
    sum += probs[id]!;
    if (reaches(sum)) return { position: lo + i, mass: sum };
  }
  return undefined;
}

/** The token last in the reference order among `pool[0..count)`. */
function lastInOrder(logits: Float32Array, count: number): number {
  let last = pool[0]!;
  for (let i = 1; i < count; i++) if (precedes(logits, last, pool[i]!)) last = pool[i]!;
  return last;
}

interface TokenCrossing {
  id: number;
  bucket: number;
  /** Mass of the tokens up to and including it. */
  mass: number;
}

/** The first token (in the reference order over the whole vocabulary) at which the running mass reaches `target`. */
function crossingToken(
  logits: Float32Array,
  n: number,
  target: number,
  inclusive: boolean,
): TokenCrossing | undefined {
  const reaches = (sum: number) => (inclusive ? sum >= target : sum > target);
  let before = 0;
  for (let b = 0; b < BUCKETS; b++) {
    const m = bucketMass[b]!;
    if (m === 0) continue;
    if (!reaches(before + m)) {
      before += m;
      continue;
    }
    let count = 0;
    for (let i = 0; i < n; i++) if (bucketOf[i] === b) pool[count++] = i;
    const found = findCrossing(logits, count, before, target, inclusive);
    // Rounding: the bucket's mass reached the target but its tokens, added one by one, did not; take its last.
    if (!found) return { id: lastInOrder(logits, count), bucket: b, mass: before + m };
    return { id: pool[found.position]!, bucket: b, mass: found.mass };
  }
  return undefined;
}

/** The token last in the reference order over the whole vocabulary. */
function lastToken(logits: Float32Array, n: number): number {
  let last = 0;
  for (let i = 1; i < n; i++) if (precedes(logits, last, i)) last = i;
  return last;
}

/** The normaliser of `softmax(logits / temperature)`: `max` of the logits and the sum of `exp((l - max) / t)`. */
export interface SoftmaxStats {
  max: number;
  sumExp: number;
}

/**
 * Draws a token from `softmax(logits / temperature)` restricted to the top-p nucleus, as the reference
 * `sampleToken` does for `{ temperature, topP }` with the same draw from `next()`: the same token, except where a
 * running sum lands within floating-point rounding of a threshold (the sums are added in another order). `softmax`,
 * when given, receives the normaliser it computed (at temperature 1 it is the log-sum-exp that logprobs need).
 */
export function sampleTopP(
  logits: Float32Array,
  temperature: number,
  topP: number,
  next: () => number,
  softmax?: SoftmaxStats,
): number {
  const n = logits.length;
  if (n === 0) throw new RangeError('cannot sample from empty logits');
  scratch(n);
  let max = -Infinity;
  let min = Infinity;
  for (let i = 0; i < n; i++) {
    const l = logits[i]!;
    if (l > max) max = l;
    if (l < min && l > -Infinity) min = l;
  }
  // Bucket 0 holds the largest logits; a larger logit never lands in a later bucket than a smaller one.
  const scale = max > min && max < Infinity ? (BUCKETS - 1) / (max - min) : 0;
  bucketMass.fill(0);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const l = logits[i]!;
    const p = Math.exp((l - max) / temperature);
    probs[i] = p;
    total += p;
    const d = (max - l) * scale;
    const b = d < BUCKETS - 1 ? d | 0 : BUCKETS - 1;
    bucketOf[i] = b;
    bucketMass[b]! += p;
  }
  if (softmax) {
    softmax.max = max;
    softmax.sumExp = total;
  }
  // The nucleus ends at its last token; without top-p it is the whole vocabulary.
  const end = topP < 1 ? crossingToken(logits, n, topP * total, true) : undefined;
  const drawn = crossingToken(logits, n, next() * (end?.mass ?? total), false);
  // A draw past the end (only by rounding) takes the last token kept, as the reference does.
  if (!end) return drawn?.id ?? lastToken(logits, n);
  if (
    !drawn ||
    drawn.bucket > end.bucket ||
    (drawn.bucket === end.bucket && precedes(logits, end.id, drawn.id))
  )
    return end.id;
  return drawn.id;
}
